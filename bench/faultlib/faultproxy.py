"""A TCP fault proxy: forwards 127.0.0.1:listen to 127.0.0.1:target, and on demand
refuses new connections, stalls (accepts and holds them, forwards nothing), resets
them after reading their first bytes, or cuts every live connection.

It runs in threads of the harness process; its counters tell what reached it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

PASS, REFUSE, STALL, RESET = "pass", "refuse", "stall", "reset"


class FaultProxy:
    def __init__(self, listen_port: int, target_port: int, name: str = "proxy"):
        self.listen_port = listen_port
        self.target_port = target_port
        self.name = name
        self.mode = PASS
        self.accepted = 0  # connections accepted (any mode)
        self.first_bytes: list[bytes] = []  # what RESET mode read before closing
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopped = False
        self._open_listener()

    # --- control ----------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        """PASS forwards; REFUSE closes the listening socket (connect is refused);
        STALL accepts and holds new connections and stops forwarding on live ones;
        RESET accepts, reads the first bytes, records them and closes."""
        assert mode in (PASS, REFUSE, STALL, RESET)
        self.mode = mode
        if mode == REFUSE:
            self._close_listener()
        elif self._listener is None:
            self._open_listener()

    def cut(self) -> int:
        """Close every live connection both ways (as a crashed peer would, with RST)."""
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for sock in conns:
            _abort(sock)
        return len(conns)

    def stop(self) -> None:
        self._stopped = True
        self._close_listener()
        self.cut()

    # --- machinery ------------------------------------------------------------------

    def _open_listener(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(50):  # the old listener's port may take a moment to free
            try:
                sock.bind(("127.0.0.1", self.listen_port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            sock.bind(("127.0.0.1", self.listen_port))
        sock.listen(512)
        self._listener = sock
        threading.Thread(
            target=self._accept_loop, args=(sock,), name=f"{self.name}-accept",
            daemon=True,
        ).start()  # fmt: skip

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopped:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed
            self.accepted += 1
            mode = self.mode
            if mode == RESET:
                threading.Thread(
                    target=self._reset, args=(client,), daemon=True
                ).start()
                continue
            with self._lock:
                self._conns.add(client)
            if mode == STALL:
                continue  # held open, never forwarded, until cut()
            threading.Thread(
                target=self._pipe, args=(client,), name=f"{self.name}-pipe",
                daemon=True,
            ).start()  # fmt: skip

    def _reset(self, client: socket.socket) -> None:
        client.settimeout(2)
        try:
            data = client.recv(4096)
        except OSError:
            data = b""
        with self._lock:
            self.first_bytes.append(data)
        _abort(client)

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), 2)
        except OSError:
            self._drop(client)
            _abort(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._conns.add(upstream)
        peers = {client: upstream, upstream: client}
        try:
            while True:
                if self.mode == STALL:  # live connections stop moving bytes
                    time.sleep(0.05)
                    if client.fileno() < 0 or upstream.fileno() < 0:
                        return
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                self._drop(sock)
                with contextlib.suppress(OSError):
                    sock.close()

    def _drop(self, sock) -> None:
        with self._lock:
            self._conns.discard(sock)


def _abort(sock: socket.socket) -> None:
    """Close with RST rather than FIN: the peer sees a reset, as after a crash."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
