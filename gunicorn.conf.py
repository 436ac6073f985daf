"""gunicorn settings for XenX (``scripts/run`` uses them; so does every production node:
``gunicorn -c gunicorn.conf.py xenx.wsgi``). Everything comes from the environment:

- ``XENX_ADDR`` (default ``127.0.0.1:8000``): address to bind, ``host:port``.
- ``WEB_CONCURRENCY``: worker processes. Default 1 with the embedded local-memory
  cache (state must stay in one process), the number of CPUs with ``REDIS_URL``. More
  than one without ``REDIS_URL`` is refused here (and is Django's check ``xenx.E001``).
- ``GUNICORN_THREADS`` (default 8): threads per worker (``gthread``); the gateway keeps
  as many keep-alive connections per upstream instance and worker.
- ``GUNICORN_TIMEOUT`` (default 30 s): a worker whose main loop is silent that long is
  restarted; requests run in threads, so a slow upstream call does not trigger it.
- ``PROMETHEUS_MULTIPROC_DIR``: with more than one worker, a fresh temporary directory
  is made when it is not set, emptied of stale files at start, and removed at exit
  when made here, so ``/metrics`` sums the node's workers.

Each worker also starts the gateway's active health checks (``gateway.prober``) once it
has loaded the application.

Every system check runs once, here in gunicorn's master, before anything is bound or
forked (``xenx/startup.py``): a bad setting, ``XENX_ADDR`` included, is one line on
stderr and exit status 1.
"""

import errno
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

wsgi_app = "xenx.wsgi:application"
bind = [os.environ.get("XENX_ADDR") or "127.0.0.1:8000"]
_shared_cache = bool(os.environ.get("REDIS_URL"))
_default_workers = (os.cpu_count() or 1) if _shared_cache else 1
workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers)
if workers > 1 and not _shared_cache:
    sys.exit(
        f"WEB_CONCURRENCY={workers} needs REDIS_URL: with the local-memory cache each "
        "worker would keep its own rate limits, revocations and health state."
    )
threads = int(os.environ.get("GUNICORN_THREADS") or 8)
# gthread with a deadline on each read and write of a client's socket
# (XENX_CLIENT_TIMEOUT): a client that sends part of a request cannot hold a thread.
worker_class = "xenx.worker.ThreadWorker"
# Python's socket.sendfile (static files, document downloads) waits out the kernel's
# send timeout in a poll of its own, with no deadline: plain writes keep the deadline.
sendfile = False
# Several servers on one address (SO_REUSEPORT: a new master binds while the old one
# drains) only with Redis. With the process-local cache each would keep its own
# revocations, limits and health, and a token logged out on one would pass on the
# other: without REDIS_URL a second server on an address in use is refused
# (on_starting).
reuse_port = _shared_cache
# gunicorn's control socket (gunicornc) is off: its default path is one per user
# (~/.gunicorn/gunicorn.ctl), so each node started on a host took the last one's over.
control_socket_disable = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = 30
keepalive = 5
# Django reads these to size the gateway's pools and check the cache against workers.
os.environ["WEB_CONCURRENCY"] = str(workers)
os.environ["GUNICORN_THREADS"] = str(threads)

_made_metrics_dir = None
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_metrics_dir = tempfile.mkdtemp(prefix="xenx-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dir


def _refuse_bad_settings():
    """Every system check, once, before anything is bound or a worker forked
    (xenx/startup.py): a bad setting is one line on stderr and exit status 1. Refused
    in a worker instead, it ended in a traceback per worker, and gunicorn restarts
    workers. The checks load Django, which must never be loaded in gunicorn's master
    (workers would inherit it, prometheus_client's multi-process files included): they
    run in a forked child, which hands back its one line through a pipe. Runs after
    the environment above is final (Django reads it)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # only the refusal is said, through the pipe
            os.dup2(devnull, 2)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # not the node's metrics
            # The repository holds this file; --chdir and --pythonpath apply later.
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from xenx import startup  # not at the top: in the child, on that path

            refusal = startup.refusal()
            os.write(write_end, (refusal or "").encode())
            code = 1 if refusal else 0
        except BaseException as exc:  # noqa: BLE001 - reported, in one line
            os.write(write_end, f"XenX refuses to start: {exc!r}"[:2000].encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        if _made_metrics_dir:
            shutil.rmtree(_made_metrics_dir, ignore_errors=True)
        sys.exit(b"".join(chunks).decode() or "XenX refuses to start: checks failed")
    # The workers (forked from this master) need not run them again.
    os.environ[_STARTUP_FLAG] = str(os.getpid())


_STARTUP_FLAG = "XENX_STARTUP_CHECKED_BY"
_refuse_bad_settings()

# One JSON line per event: gunicorn's own messages use the formatter of XenX's logs
# (wherever --error-logfile sends them); requests are logged once, by XenX's access log
# (gunicorn's own access log stays off unless --access-logfile asks for it).
# gunicorn also reads this file when started as plain `gunicorn xenx.wsgi` from the
# repository's root (its default config file); command-line options override it.
accesslog = None


class XenxLogger(Logger):
    """gunicorn's messages in the format of XenX's own logs: JSON lines under
    production settings, readable lines in development."""

    def setup(self, cfg):
        super().setup(cfg)
        # not at the top: gunicorn reads this file before the application's path is
        # importable (--chdir, --pythonpath)
        from core.logging import formatter_for

        formatter = formatter_for(os.environ.get("DJANGO_SETTINGS_MODULE", ""))
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)


logger_class = XenxLogger


def _address_in_use(address: str) -> bool:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn
            probe.bind((host, int(port)))
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    except ValueError:  # not host:port: gunicorn says what is wrong with it
        return False
    return False


def on_starting(server):
    if not reuse_port:  # one line and exit 1, not five retries and a traceback
        for address in bind:
            if _address_in_use(address):
                server.log.error(
                    "%s is in use (another server?): stop it or set another "
                    "XENX_ADDR; several servers on one address need REDIS_URL.",
                    address,
                )
                sys.exit(1)
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:  # counters of a previous run must not be summed into this one
        path = Path(metrics_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def when_ready(server):
    from xenx.settings.env import public_url  # as XenxLogger: not at the top

    # gunicorn's own "Listening at:" line is blank when each worker binds (reuse_port)
    server.log.info("Serving http://%s (public URL %s)", ",".join(bind), public_url())


def post_worker_init(worker):
    from gateway import prober  # Django's apps are ready only once the worker loaded it

    prober.start()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess  # only when metrics are shared

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
