"""Free ports on 127.0.0.1."""

from __future__ import annotations

import random
import socket


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
