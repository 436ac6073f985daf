"""Client address as README "Gateway" derives it: X-Forwarded-For is trusted only from proxies
listed in XENX_TRUSTED_PROXIES."""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]):
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def is_trusted_proxy(address: str) -> bool:
    entries = tuple(settings.XENX_TRUSTED_PROXIES)
    if not entries:
        return False
    return _is_trusted(entries, address)


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
