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


def _group_jiffies(pgids: set[int], parts: dict[int, str] | None = None) -> dict:
    """utime + stime of every live process in the given process groups (key ``""``),
    and of each named part: the process groups of ``parts`` (pgid -> name) and, as
    "redis", every ``redis-server`` process (the machine's Redis, which XenX targets
    use: part of the system under test, not other work)."""
    totals: dict[str, int] = {"": 0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        rest = raw[raw.rfind(")") + 2 :].split()
        pgrp, jiffies = int(rest[2]), int(rest[11]) + int(rest[12])  # utime, stime
        part = "redis" if comm == "redis-server" else (parts or {}).get(pgrp)
        if part is not None:
            totals[part] = totals.get(part, 0) + jiffies
        if pgrp in pgids or part == "redis":
            totals[""] += jiffies
    return totals


class CpuMeter:
    """How busy the machine was during a run, how much of that was ours (the servers
    of this run, Redis and wrk) rather than other work on the machine, and the CPU
    seconds of each named part (``parts``: pgid -> name; "redis" and "wrk" always)."""

    def __init__(self, pgids: set[int], parts: dict[int, str] | None = None):
        self.pgids = pgids
        self.parts = parts or {}

    def __enter__(self):
        self.t0 = time.monotonic()
        self.m0 = _cpu_times()
        self.g0 = _group_jiffies(self.pgids, self.parts)
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
        g1 = _group_jiffies(self.pgids, self.parts)
        children = ru.ru_utime + ru.ru_stime - self.c0  # wrk, once it has exited
        # CPU seconds by part; "machine": every busy core of the machine
        self.seconds = {
            name: (g1.get(name, 0) - self.g0.get(name, 0)) / CLK_TCK
            for name in {*self.parts.values(), "redis"}
        }
        self.seconds["wrk"] = children
        self.busy_cores = ncpu * (busy1 - busy0) / ticks
        self.seconds["machine"] = self.busy_cores * wall
        ours = (g1[""] - self.g0[""]) / CLK_TCK + children
        self.steal_cores = ncpu * (steal1 - steal0) / ticks
        self.ours_cores = ours / max(wall, 1e-6)
        self.others_cores = max(0.0, self.busy_cores - self.ours_cores)
        return False

    def per_request_us(self, requests: int) -> dict[str, float]:
        """CPU microseconds per request of each part, and of the whole machine."""
        n = max(1, requests)
        return {name: round(s * 1e6 / n, 1) for name, s in self.seconds.items()}
