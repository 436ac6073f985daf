"""``--profile``: one extra run under py-spy, summarised by function and package."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from .common import CONNECTIONS, RESULTS, ROOT, BenchError, Processes, Target, log
from .load import run_wrk

# --- profiling (--profile) -----------------------------------------------------------


def _frame_key(frame: str) -> tuple[str, str]:
    """'func (path/to/file.py:12)' -> ('func (file.py)', package or project dir)."""
    match = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame, "?"
    func, path = match.groups()
    parts = path.split("/")
    if "site-packages" in parts:
        pkg = parts[parts.index("site-packages") + 1]
    elif path.startswith("<"):
        pkg = "stdlib"
    elif any(re.fullmatch(r"python3\.\d+", part) for part in parts):
        idx = next(i for i, p in enumerate(parts) if re.fullmatch(r"python3\.\d+", p))
        pkg = "stdlib:" + parts[idx + 1].removesuffix(".py")
    else:
        pkg = parts[0] if len(parts) > 1 else "project"
        try:
            rel = Path(path).resolve().relative_to(ROOT)
            pkg = rel.parts[0] if len(rel.parts) > 1 else "project"
        except ValueError:
            pass
    return f"{func} ({parts[-1]})", pkg


# Leaf frames that block (in C, without the GIL) rather than compute.
WAIT_LEAVES = {
    "_worker (thread.py)",
    "EpollSelector.select (selectors.py)",
    "PollSelector.select (selectors.py)",
    "SocketIO.readinto (socket.py)",
    "poll_wait_for_socket.<locals>.do_poll (wait.py)",
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "Arbiter.sleep (arbiter.py)",
    "Connection.read_response (connection.py)",
    "SocketBuffer._read_from_socket (resp3.py)",
    "SocketBuffer._read_from_socket (socket.py)",
    "_read_from_socket (socket.py)",
}


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self and inclusive sample shares by function, and self share by package."""
    self_c: dict[str, int] = {}
    incl_c: dict[str, int] = {}
    pkg_c: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_key(f) for f in stack.split(";")]
        frames = [f for f in frames if not f[0].startswith("process ")]
        if not frames:
            continue
        leaf, pkg = frames[-1]
        if leaf in WAIT_LEAVES:
            pkg = "(waiting)"
        self_c[leaf] = self_c.get(leaf, 0) + n
        pkg_c[pkg] = pkg_c.get(pkg, 0) + n
        for name in {f[0] for f in frames}:
            incl_c[name] = incl_c.get(name, 0) + n
    if not total:
        return "no samples"

    def table(counts: dict[str, int], title: str) -> list[str]:
        rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [title] + [f"  {100 * c / total:5.1f}%  {k}" for k, c in rows]

    out = [
        f"{total} wall-clock samples of threads py-spy saw as active (blocking calls it "
        "missed count as (waiting)); for CPU shares use --percall's cProfile dump"
    ]
    out += table(pkg_c, "self time by package:")
    out += table(self_c, "self time by function:")
    out += table(incl_c, "inclusive time by function:")
    return "\n".join(out)


def profile_target(target: Target, procs: Processes, seconds: float) -> Path | None:
    pid = procs.pid_of(target.server)
    if pid is None or target.server.startswith("nginx"):
        log(f"  ({target.key}) not a Python server: not profiled")
        return None
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"profile-{target.key}.txt"
    cmd = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--full-filenames",
        "--rate",
        "250",
        "--duration",
        f"{seconds + 1:g}",
        "--format",
        "raw",
        "--output",
        str(raw),
    ]
    spy = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    time.sleep(1.0)  # let it attach to the workers
    res = run_wrk(target, CONNECTIONS[0], seconds)
    try:
        _, err = spy.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode != 0 or not raw.exists():
        raise BenchError(f"py-spy failed on ({target.key}): {err.decode()[-1000:]}")
    summary = summarize_profile(raw)
    (RESULTS / f"profile-{target.key}.summary.txt").write_text(summary + "\n")
    log(
        f"  ({target.key}) {res['rps']:,.0f} req/s under py-spy; "
        f"{raw} and profile-{target.key}.summary.txt"
    )
    return raw
