"""The parts of bench/harness.py (run it through ``bench/run``)."""
