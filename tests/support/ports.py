"""Free ports on 127.0.0.1."""

from __future__ import annotations

import contextlib
import random
import socket
import threading


def free_port(candidates: range | None = None) -> int:
    """A port nothing listens on now: the kernel's choice, or one of ``candidates``
    (a fixed range keeps a server that starts later away from the ephemeral ports
    outgoing connections take meanwhile)."""
    if candidates is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    for port in random.sample(candidates, len(candidates)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {candidates.start}-{candidates.stop - 1}")


def closed_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


class RawServer:
    """A listening socket on 127.0.0.1 that accepts until ``accepting()`` says no more:
    ``accepted(conn, peer)`` records a connection in order (on the accepting thread) and
    returns its state, then ``serve(conn, *state)`` answers it on its own thread.
    ``close`` ends the listener and every connection (``conns``). A subclass sets its
    own attributes before calling ``__init__``, which starts accepting."""

    def __init__(self):
        self.conns: list[socket.socket] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def accepting(self) -> bool:
        return True

    def accepted(self, conn: socket.socket, peer) -> tuple:
        return ()

    def serve(self, conn: socket.socket, *state) -> None:
        raise NotImplementedError

    def _accept(self):
        while self.accepting():
            try:
                conn, peer = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            state = self.accepted(conn, peer)
            threading.Thread(
                target=self.serve, args=(conn, *state), daemon=True
            ).start()

    def close(self):
        """Stop accepting and cut every connection, as a killed server would: shut down
        first, since a close alone neither wakes a thread blocked in ``accept`` or
        ``recv`` nor ends what that thread still holds."""
        for sock in (self.listener, *self.conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
