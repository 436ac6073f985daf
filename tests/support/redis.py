"""A scriptable fake Redis: a RESP server on a real socket on 127.0.0.1, for the hot
path's pipeline (``gateway.state``) and its failure modes."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from .ports import RawServer

HANG = None  # a step that never answers (the connection is held open)
ANSWER = "answer"  # ``:1`` to every command of the pipeline
RESET = "reset"  # as ``close``: the connection reset (RST), not closed (FIN)


class FakeRedis(RawServer):
    """A RESP server: one list of steps per accepted connection (then ``ANSWER``
    forever), a step per pipeline (the commands that arrived together): ``ANSWER``,
    ``HANG``, or ``(bytes, close)``: those bytes, then the connection closed when
    ``close`` (reset when it is ``RESET``). ``calls[i]`` lists the pipelines
    connection ``i`` received, each a list of commands (lists of bytes)."""

    def __init__(self, *script):
        self.script = [list(steps) for steps in script]
        self.calls: list[list[list[list[bytes]]]] = []
        self.peers: list[int] = []  # the client's port of each connection
        self.closed = threading.Semaphore(0)  # released after each scripted close
        super().__init__()

    @property
    def connections(self) -> int:
        return len(self.calls)

    def commands(self) -> list[list[bytes]]:
        return [cmd for conn in self.calls for call in conn for cmd in call]

    def accepted(self, conn, peer) -> tuple:
        calls: list = []
        self.calls.append(calls)
        self.peers.append(peer[1])
        return self.script.pop(0) if self.script else [], calls

    def serve(self, conn, steps, calls):
        scripted_close = False
        with conn, contextlib.suppress(OSError):
            scripted_close = self._exchange(conn, steps, calls)
        if scripted_close:  # released once the socket is closed
            self.closed.release()

    def _exchange(self, conn, steps, calls) -> bool:
        """Serve the connection; True when a step closed it."""
        buf = b""
        while True:
            data = conn.recv(65536)
            if not data:
                return False
            buf += data
            commands, buf = parse(buf)
            if not commands:
                continue
            calls.append(commands)
            step = steps.pop(0) if steps else ANSWER
            if step is HANG:
                while conn.recv(65536):  # until the client gives up
                    pass
                return False
            if step == ANSWER:
                conn.sendall(b":1\r\n" * len(commands))
                continue
            reply, close = step
            conn.sendall(reply)
            if close == RESET:  # closed with a reset, not a FIN
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            if close:
                return True


def parse(buf: bytes) -> tuple[list[list[bytes]], bytes]:
    """The whole RESP commands (arrays of bulk strings) at the start of ``buf``, and
    the rest."""
    commands = []
    while True:
        pos, command = 0, []
        try:
            end = buf.index(b"\r\n", pos)
            count = int(buf[pos + 1 : end])
            pos = end + 2
            for _ in range(count):
                end = buf.index(b"\r\n", pos)
                size = int(buf[pos + 1 : end])
                pos = end + 2
                if len(buf) < pos + size + 2:
                    raise ValueError("incomplete")
                command.append(buf[pos : pos + size])
                pos += size + 2
        except ValueError:
            return commands, buf
        commands.append(command)
        buf = buf[pos:]
        if not buf:
            return commands, buf
