"""Client address as README "Gateway" derives it: X-Forwarded-For is trusted only from proxies
listed in XENX_TRUSTED_PROXIES."""

import ipaddress
import socket
import struct
from functools import lru_cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]):
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def is_trusted_proxy(address: str) -> bool:
    entries = _entries if _entries is not None else _load_entries()
    if not entries:
        return False
    return _is_trusted(entries, address)


_entries: tuple[str, ...] | None = None  # XENX_TRUSTED_PROXIES, read once


def _load_entries() -> tuple[str, ...]:
    global _entries
    _entries = tuple(settings.XENX_TRUSTED_PROXIES)
    return _entries


@receiver(setting_changed)
def _forget(setting, **kwargs):
    global _entries
    if setting == "XENX_TRUSTED_PROXIES":
        _entries = None


@lru_cache(maxsize=4096)  # a proxied call asks about the same few addresses each time
def _is_trusted(entries: tuple[str, ...], address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _trusted_networks(entries))


def forwarded_chain(request) -> tuple[str, ...]:
    """The X-Forwarded-For chain to send upstream: incoming chain kept only from a
    trusted peer, then the peer itself. Computed once per request (the gateway needs it
    for the header and, on anonymous calls, for the client address)."""
    cached = getattr(request, "_xenx_forwarded_chain", None)
    if cached is not None:
        return cached
    peer = request.META.get("REMOTE_ADDR", "")
    chain: list[str] = []
    if is_trusted_proxy(peer):
        raw = request.META.get("HTTP_X_FORWARDED_FOR", "")
        chain = [part.strip() for part in raw.split(",") if part.strip()]
    chain.append(peer)
    request._xenx_forwarded_chain = tuple(chain)
    return request._xenx_forwarded_chain


@lru_cache(maxsize=4096)
def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def client_ip(request) -> str:
    """The client's address: walk X-Forwarded-For from the right past trusted proxies."""
    cached = getattr(request, "_xenx_client_ip", None)
    if cached is not None:
        return cached
    chain = forwarded_chain(request)
    ip = chain[-1]
    for candidate in reversed(chain):
        ip = candidate
        if not is_trusted_proxy(candidate):
            break
    if not _is_ip(ip):
        ip = request.META.get("REMOTE_ADDR", "") or "0.0.0.0"  # noqa: S104
    request._xenx_client_ip = ip
    return ip


def counted_address(request) -> str:
    """The client address that limits count (the login throttles and the gateway's
    anonymous limit alike): IPv4 as is, IPv6 by its /64 (``RATELIMIT_IPV6_MASK``), since
    one subscriber usually holds a whole /64 and could rotate single addresses."""
    return _counted(client_ip(request))


@lru_cache(maxsize=4096)  # an anonymous call asks about the same few addresses
def _counted(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        mask = getattr(settings, "RATELIMIT_IPV6_MASK", 64)
        return str(ipaddress.ip_network(f"{ip}/{mask}", strict=False).network_address)
    return ip


def kernel_timeouts(sock: socket.socket, seconds: float | None) -> None:
    """Make ``sock`` blocking with its send and receive timeouts kept by the kernel
    (SO_SNDTIMEO / SO_RCVTIMEO): a call that waits longer raises ``BlockingIOError``.

    Python's own socket timeout polls before every send and receive, and releases the
    GIL for each poll as for the call itself; under a threaded server every release can
    hand the GIL to another thread and back. The gateway's hot path sends and receives
    twice per call (Redis, the upstream), so the polls were a measured share of it.
    ``None``: no timeout (one set before is cleared)."""
    sock.settimeout(None)
    value = _timeval(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def receive_timeout(sock: socket.socket, seconds: float) -> None:
    """Only the kernel's receive timeout of ``sock`` (see ``kernel_timeouts``)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))


def _timeval(seconds: float | None) -> bytes:
    if seconds is None:
        whole = micro = 0  # a zero timeval means "wait forever"
    else:
        # At least 1 µs (zero would be forever); microseconds below 1,000,000 (the
        # kernel refuses more with EDOM: 0.9999999 s rounds up to 1 s, not 0 s + 10⁶ µs).
        whole, micro = divmod(max(round(seconds * 1_000_000), 1), 1_000_000)
    return struct.pack("ll", whole, micro)
