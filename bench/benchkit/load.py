"""Checks before the load, wrk runs, and the in-process cost per call."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .common import (
    BENCH,
    BODY,
    RESULTS,
    ROOT,
    WRK_SCRIPT,
    WRK_THREADS,
    BenchError,
    Target,
    http_get,
    log,
    run,
)

# --- checks and load ---------------------------------------------------------------


def first_headers(target: Target) -> dict:
    """The headers of the first request the wrk script sends to ``target``."""
    headers = {}
    if target.tokens_file:
        token = target.tokens_file.read_text().split("\n", 1)[0]
        headers["Authorization"] = f"Bearer {token}"
    if target.client_ips:
        headers["X-Forwarded-For"] = "10.0.0.0"
    return headers


def check_target(target: Target) -> None:
    headers = first_headers(target)
    status, resp_headers, body = http_get(target.port, target.path, headers)
    if status != 200 or body != BODY.encode():
        raise BenchError(
            f"({target.key}) {target.url} answered {status} {body[:300]!r}; "
            f"expected 200 {BODY!r}"
        )
    if target.key in ("d", "e", "f", "g", "h", "i"):
        lowered = {k.lower(): v for k, v in resp_headers.items()}
        if "x-ratelimit-limit" not in lowered:
            raise BenchError(
                f"({target.key}) {target.url} has no X-RateLimit-Limit header: the call "
                "is not rate limited as the benchmark claims"
            )
    if target.tokens_file:
        status, _, body = http_get(target.port, target.path)
        if status != 401:
            raise BenchError(
                f"({target.key}) {target.url} without a token answered {status} "
                f"{body[:200]!r}; expected 401: the call is not authenticated"
            )
    if target.tokens_file:
        warm_every_user(target)
    log(f"  ({target.key}) {target.url}: 200, expected body")


def warm_every_user(target: Target) -> None:
    """One call per user before the load, each of which must pass: every token works,
    and each user's revocation record is in the cache, as it is for users active in
    the last ten minutes (a first call reads the database once; the load measures the
    steady state)."""
    tokens = [t for t in target.tokens_file.read_text().splitlines() if t]
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    try:
        for token in tokens:
            conn.request(
                "GET", target.path, headers={"Authorization": f"Bearer {token}"}
            )
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or body != BODY.encode():
                raise BenchError(
                    f"({target.key}) a user's first call answered {resp.status} "
                    f"{body[:200]!r}"
                )
    finally:
        conn.close()


RESULT_RE = re.compile(r"^BENCH_RESULT (.*)$", re.M)


def run_wrk(target: Target, conns: int, seconds: float) -> dict:
    env = dict(os.environ)
    env["BENCH_TOKENS_FILE"] = str(target.tokens_file or "")
    env["BENCH_CLIENT_IPS"] = str(target.client_ips)
    cmd = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{conns}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        target.url,
    ]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30
    )
    match = RESULT_RE.search(proc.stdout)
    if proc.returncode != 0 or not match:
        raise BenchError(f"wrk failed on {target.url}:\n{proc.stdout}\n{proc.stderr}")
    fields = {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    seconds_run = fields["duration_us"] / 1e6
    errors = int(
        fields["connect"] + fields["read"] + fields["write"] + fields["timeout"]
    )
    return {
        "rps": fields["requests"] / seconds_run,
        "p50_ms": fields["p50_us"] / 1000,
        "p90_ms": fields["p90_us"] / 1000,
        "p99_ms": fields["p99_us"] / 1000,
        "max_ms": fields["max_us"] / 1000,
        "requests": int(fields["requests"]),
        "non_2xx_3xx": int(fields["status"]),
        "socket_errors": errors,
        "seconds": round(seconds_run, 2),
    }


def _percall(target: Target, env: dict, *extra: str) -> tuple[list[str], Path]:
    """bench/percall.py's command for ``target`` (its callers rotated as wrk rotates
    them) and the directory it runs in (the --reference worktree for f and g)."""
    cmd = [sys.executable, str(BENCH / "percall.py"), target.key, target.path]
    cmd += ["--expect", BODY, *extra]
    if target.tokens_file:
        cmd += ["--tokens", str(target.tokens_file)]
    if target.client_ips:
        cmd += ["--client-ips", str(target.client_ips)]
    RESULTS.mkdir(exist_ok=True)
    cwd = BENCH if target.key in "bc" else Path(env.get("BENCH_CHECKOUT") or ROOT)
    return cmd, cwd


def measure_percall(target: Target, env: dict) -> dict:
    profile = str(RESULTS / f"percall-{target.key}.prof")
    cmd, cwd = _percall(target, env, "--cprofile", profile)
    out = run(cmd, env=env, cwd=cwd, what="percall")
    return {k: round(v, 1) for k, v in json.loads(out.strip().splitlines()[-1]).items()}


# Calls counted under callgrind: the difference of two runs cancels what is not a call
# (start-up runs uninstrumented anyway; the toggles themselves cancel out).
CALLGRIND_CALLS = (100, 300)


def measure_instructions(target: Target, env: dict) -> dict:
    """Instructions per call in process (``--instructions``): bench/percall.py under
    valgrind's callgrind, instrumentation on around the calls only, twice (100 and 300
    calls); the difference per call. Counts user-space instructions, not time: the same
    for the same code and inputs however busy or fast the machine is (the kernel's
    share of a socket call is not in it)."""
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise BenchError("--instructions needs valgrind (apt-get install valgrind)")
    totals = []
    for calls in CALLGRIND_CALLS:
        out = RESULTS / f"callgrind-{target.key}-{calls}.out"
        cmd, cwd = _percall(target, env, "--callgrind", str(calls))
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        run(
            [*valgrind, f"--callgrind-out-file={out}", *cmd],
            env={**env, "PYTHONHASHSEED": "0"},
            cwd=cwd,
            what="callgrind",
            timeout=600,
        )
        totals.append(callgrind_total(out.read_text()))
    per_call = (totals[1] - totals[0]) / (CALLGRIND_CALLS[1] - CALLGRIND_CALLS[0])
    return {"instructions": round(per_call)}


def callgrind_total(text: str) -> int:
    """The instructions (Ir) a callgrind output file counted."""
    # "totals" is what was counted while instrumentation was on ("summary" is 0 then)
    match = re.search(r"^totals: (\d+)", text, re.M) or re.search(
        r"^summary: (\d+)", text, re.M
    )
    if not match:
        raise BenchError("callgrind wrote no totals")
    return int(match.group(1))
