"""gunicorn's gthread worker with a deadline on each read from and write to a client.

Stock gthread reads a request's head and body with no deadline: a client that sends
part of a request holds a worker thread until it finishes or disconnects, so a few
such connections stall a node (README "Deployment"). Here every client socket gets,
once, kernel timeouts of ``XENX_CLIENT_TIMEOUT`` seconds (``xenx.net.kernel_timeouts``:
no poll before each call): a read or write that waits longer fails, the connection is
closed and the thread is free again. A body read that times out under a view is a 400
``malformed_request`` (``xenx.errors``), as a body cut short is. Everything else is
gunicorn's own; TLS served by gunicorn itself keeps stock behaviour.
"""

from __future__ import annotations

import errno
import logging

from django.conf import settings
from gunicorn.workers.gthread import ThreadWorker as _GThreadWorker

from .net import kernel_timeouts


class ThreadWorker(_GThreadWorker):
    def init_process(self):
        self.log.error_log.addFilter(_timed_out_client)
        super().init_process()

    def handle(self, conn):
        if not conn.initialized and not self.cfg.is_ssl:
            kernel_timeouts(conn.sock, settings.XENX_CLIENT_TIMEOUT)
        return super().handle(conn)


def _timed_out_client(record: logging.LogRecord) -> bool:
    """gunicorn logs a read or write that hit the deadline as an error with its
    traceback ("Socket error processing request."): one warning line instead."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
        record.msg, record.args = (
            "client connection dropped: %s",
            (
                f"no progress for XENX_CLIENT_TIMEOUT ({settings.XENX_CLIENT_TIMEOUT:g} s)",
            ),
        )
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
    return True
