"""The machine the run is on, and how busy it was (``others``)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import resource
import subprocess
import time

# --- machine -----------------------------------------------------------------------


def _version(cmd: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "?"


def _dist(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict:
    cpu_model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": _dist("Django"),
        "gunicorn": _dist("gunicorn"),
        "django_revproxy": _dist("django-revproxy"),
        "urllib3": _dist("urllib3"),
        "requests": _dist("requests"),
        "nginx": _version(["nginx", "-v"], r"nginx/(\S+)"),
        "wrk": _version(["wrk", "-v"], r"wrk (\S+)"),
    }


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_times() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal, steal


def _group_jiffies(pgids: set[int]) -> int:
    """utime + stime of every live process in the given process groups."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        if int(rest[2]) in pgids:  # pgrp
            total += int(rest[11]) + int(rest[12])  # utime, stime
    return total


class CpuMeter:
    """How busy the machine was during a run, and how much of that was ours (the
    servers of this run and wrk) rather than other work on the machine."""

    def __init__(self, pgids: set[int]):
        self.pgids = pgids

    def __enter__(self):
        self.t0 = time.monotonic()
        self.m0 = _cpu_times()
        self.g0 = _group_jiffies(self.pgids)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        busy0, total0, steal0 = self.m0
        busy1, total1, steal1 = _cpu_times()
        ncpu = os.cpu_count() or 1
        ticks = max(1, total1 - total0)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = (_group_jiffies(self.pgids) - self.g0) / CLK_TCK
        ours += ru.ru_utime + ru.ru_stime - self.c0  # wrk, once it has exited
        self.busy_cores = ncpu * (busy1 - busy0) / ticks
        self.steal_cores = ncpu * (steal1 - steal0) / ticks
        self.ours_cores = ours / max(wall, 1e-6)
        self.others_cores = max(0.0, self.busy_cores - self.ours_cores)
        return False
