"""gunicorn's gthread worker with a deadline on each read from and write to a client.

Stock gthread reads a request's head and body with no deadline: a client that sends
part of a request holds a worker thread until it finishes or disconnects, so a few
such connections stall a node (README "Deployment"). Here every client socket gets,
once, kernel timeouts of ``XENX_CLIENT_TIMEOUT`` seconds (``core.net.kernel_timeouts``:
no poll before each call): a read or write that waits longer fails, the connection is
closed and the thread is free again. A body read that times out under a view is a 400
``malformed_request`` (``core.errors``), as a body cut short is. gunicorn.conf.py turns
``sendfile`` off: Python's ``socket.sendfile`` waits out a kernel send timeout in a
poll of its own, with no deadline.

A request must also arrive whole, head and body, within
``XENX_CLIENT_REQUEST_TIMEOUT`` seconds of the thread taking it up: a client that
trickles a byte every few seconds makes progress on every read, so only a deadline on
the whole request frees its thread. gunicorn's request reader gets the client socket
behind ``_DeadlineSocket``, whose receives fail once the deadline has passed and wait
no longer than what is left of it; the per-read timeout still applies, and waiting on
an upstream or writing the answer is not bounded by it.

A connection the worker thread is done with is also closed on that thread, gracefully
(gunicorn's linger of up to 2 s for the client's last bytes), or at once when it timed
out: stock gthread closes it on the main thread, whose loop (accepting, keep-alive,
the arbiter's heartbeat) would stop for that linger once per dropped client.
Everything else is gunicorn's own; TLS served by gunicorn itself keeps stock gthread.
"""

from __future__ import annotations

import errno
import logging
import threading
import time

from django.conf import settings
from gunicorn import util
from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker as _GThreadWorker

from core.net import kernel_timeouts, receive_timeout

_SOCKET_ERROR = "Socket error processing request."  # gunicorn's message for it
_local = threading.local()  # the connection this thread is serving


class ThreadWorker(_GThreadWorker):
    def init_process(self):
        self.log.error_log.addFilter(_timed_out_client)
        super().init_process()

    def handle(self, conn):
        if self.cfg.is_ssl:
            return super().handle(conn)
        if not conn.initialized:
            kernel_timeouts(conn.sock, settings.XENX_CLIENT_TIMEOUT)
            if type(conn) is TConn:  # its reader gets the deadline when it is made
                conn.__class__ = _DeadlineConn
        _local.client, _local.timed_out, _local.late = conn.client, False, False
        _local.deadline = time.monotonic() + settings.XENX_CLIENT_REQUEST_TIMEOUT
        result = super().handle(conn)
        if result is False:  # closed here, not on the main thread (see above)
            if _local.timed_out:
                util.close(conn.sock)
            else:
                util.close_graceful(conn.sock)
        return result


class _DeadlineConn(TConn):
    """gunicorn's connection, whose request reader receives through
    ``_DeadlineSocket`` (the answer is still written to the socket itself)."""

    def init(self):
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        if unreader is not None and getattr(unreader, "sock", None) is self.sock:
            unreader.sock = _DeadlineSocket(self.sock)


class _DeadlineSocket:
    """A client socket whose receives end with the request's deadline (set per
    request on the serving thread): none starts after it, and none waits past it."""

    __slots__ = ("sock", "lowered")

    def __init__(self, sock):
        self.sock = sock
        self.lowered = False  # the kernel's receive timeout is below the per-read one

    def recv(self, size: int) -> bytes:
        left = getattr(_local, "deadline", 0.0) - time.monotonic()
        if left <= 0:
            _local.late = True
            raise BlockingIOError(errno.EAGAIN, "the request's deadline has passed")
        per_read = settings.XENX_CLIENT_TIMEOUT
        if left < per_read:
            receive_timeout(self.sock, left)
            self.lowered = True
        elif self.lowered:  # a new request on a kept-alive connection
            receive_timeout(self.sock, per_read)
            self.lowered = False
        try:
            return self.sock.recv(size)
        except BlockingIOError:
            _local.late = self.lowered
            raise

    def __getattr__(self, name):
        return getattr(self.sock, name)


def _timed_out_client(record: logging.LogRecord) -> bool:
    """gunicorn logs a client read or write that hit the deadline as an error with its
    traceback: one warning line with the client's address instead."""
    exc = record.exc_info[1] if record.exc_info else None
    if (
        record.msg == _SOCKET_ERROR
        and isinstance(exc, OSError)
        and exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
    ):
        _local.timed_out = True
        client = getattr(_local, "client", None)
        peer = client[0] if isinstance(client, tuple) and client else client
        if getattr(_local, "late", False):
            record.msg = "client connection dropped: request not received in %g s (%s)"
            record.args = (settings.XENX_CLIENT_REQUEST_TIMEOUT, peer or "unknown peer")
        else:
            record.msg = "client connection dropped: no progress for %g s (%s)"
            record.args = (settings.XENX_CLIENT_TIMEOUT, peer or "unknown peer")
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
    return True
