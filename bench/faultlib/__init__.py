"""The XenX fault harness (``bench/faults``): two gateway nodes on one PostgreSQL
database and one private Redis, upstream instances, fault proxies and a load generator,
and the outage scenarios run while the load runs. See README.md, "Failure policy".

Importable from the slow tests (``tests/faults/``) as well as from ``bench/faults.py``.
"""
