"""The benchmark's CPU accounting (``bench/benchkit/machine.py``): CPU seconds of each
named process group, per request, and the --layout setting every Django target shares."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from benchkit import common  # noqa: E402
from benchkit.machine import CpuMeter  # noqa: E402

# burns CPU, then stays alive (a server between requests): /proc forgets the exited
BURN = (
    "import time\nend = time.process_time() + {s}\n"
    "while time.process_time() < end: pass\ntime.sleep(5)"
)

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="reads /proc (Linux)"
)


def _group(seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BURN.format(s=seconds)], start_new_session=True
    )


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def test_each_named_group_is_charged_its_own_cpu():
    busy, idle = (
        _group(0.6),
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(5)"], start_new_session=True
        ),
    )
    time.sleep(0.05)
    try:
        with CpuMeter({busy.pid, idle.pid}, {busy.pid: "server", idle.pid: "upstream"}) as cpu:  # fmt: skip
            deadline = time.monotonic() + 20
            while _cpu_of(busy.pid) < 0.5 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        busy.kill()
        idle.kill()
    # the busy group burned >= 0.5 s of CPU inside the meter; the sleeping one ~none
    assert 0.4 <= cpu.seconds["server"] <= 1.0
    assert cpu.seconds["upstream"] < 0.1
    assert cpu.seconds["machine"] >= cpu.seconds["server"] * 0.8
    assert cpu.ours_cores > 0
    per = cpu.per_request_us(1000)
    assert per["server"] == round(cpu.seconds["server"] * 1e6 / 1000, 1)
    assert set(per) >= {"server", "upstream", "redis", "wrk", "machine"}


def test_no_request_counts_as_one():
    with CpuMeter(set(), {}) as cpu:
        pass
    assert cpu.per_request_us(0)["wrk"] == round(cpu.seconds["wrk"] * 1e6, 1)


def test_layout_is_shared_by_every_django_target():
    before = common.layout()
    try:
        common.set_layout(4, 2)
        assert common.layout() == (4, 2)
        args = common.GUNICORN_ARGS
        assert args[args.index("--workers") + 1] == "4"
        assert args[args.index("--threads") + 1] == "2"
    finally:
        common.set_layout(*before)
    assert common.layout() == (2, 8)
