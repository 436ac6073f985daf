"""Which part of the request target is forwarded, and whether it is safe to forward.

A path is forwarded only when it is a clean relative path at every layer of
percent-decoding: no ``..`` or ``.`` segments (also with ``;params``), no empty segment
(``//``), no backslash, NUL or control character, no absolute URL. Double encoding
(``%252e%252e``) is decoded layer by layer, so it is caught too.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# An absolute URL smuggled into the path (``/api/svc/http://evil``, ``https:evil``).
_SCHEME_SEGMENT = re.compile(
    r"^(?:https?|wss?|ftp|file|gopher|data|javascript|mailto|ldap|dict):", re.I
)
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
# Characters kept as they are when a decoded path has to be re-encoded.
_SAFE = "/!$&'()*+,;=:@-._~"
_MAX_LAYERS = 4


def _clean_layer(path: str) -> bool:
    if _UNSAFE_CHARS.search(path) or "//" in path:
        return False
    segments = path.split("/")
    if segments and segments[0] == "":
        segments = segments[1:]
    for index, segment in enumerate(segments):
        bare = segment.split(";", 1)[0]
        if bare in ("..", "."):
            return False
        if index == 0 and _SCHEME_SEGMENT.match(segment):
            return False
    return True


# Letters, digits and ``-._~/`` only: nothing to decode, no scheme, no parameters.
_PLAIN = re.compile(r"[A-Za-z0-9_~/.-]*")


def is_clean(path: str) -> bool:
    """``path`` (the part after ``/api/{service}``, still percent-encoded) is safe."""
    if (
        _PLAIN.fullmatch(path)
        and "//" not in path
        and "/." not in path
        and not path.startswith(".")
    ):  # the common case at a glance: no segment can be empty, ``.`` or ``..``
        return True
    return layers_clean(path)


def layers_clean(path: str) -> bool:
    """The full check that ``is_clean``'s shortcut stands in for: each layer of
    percent-encoding (at most ``_MAX_LAYERS``) judged, then decoded."""
    for _ in range(_MAX_LAYERS):
        if not _clean_layer(path):
            return False
        try:
            decoded = unquote(path, errors="strict") if "%" in path else path
        except UnicodeDecodeError:  # %ff: not UTF-8, so not judged (400)
            return False
        if decoded == path:
            return True
        path = decoded
    return False  # more layers of encoding than any honest client sends


def split_target(environ: dict, service: str) -> tuple[str | None, str | None]:
    """(path after ``/api/{service}``, query or None), as the client sent them.

    The raw request target (gunicorn's ``RAW_URI``) keeps the client's encoding and an
    empty ``?``; without it (other servers, the test client) the path is re-encoded from
    ``PATH_INFO`` and the query taken from ``QUERY_STRING``.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if raw[0] != "/":  # absolute-form request target: keep path and query
            scheme_end = raw.find("://")
            slash = raw.find("/", scheme_end + 3) if scheme_end > 0 else -1
            raw = raw[slash:] if slash > 0 else "/"
        path, sep, query = raw.partition("?")
        parts = path.split("/", 3)  # "", "api", service, rest
        if len(parts) >= 3 and unquote(parts[2]) == service:
            rest = "/" + parts[3] if len(parts) == 4 else ""
            if not rest.isascii():
                rest = quote(rest.encode("latin-1"), safe=_SAFE + "%")
            if not query.isascii():
                query = quote(query.encode("latin-1"), safe=_SAFE + "%?")
            return rest, (query if sep else None)
    path_info = environ.get("PATH_INFO", "")
    prefix = f"/api/{service}"
    rest = path_info[len(prefix) :] if path_info.startswith(prefix) else ""
    rest = quote(rest.encode("latin-1"), safe=_SAFE)
    query = environ.get("QUERY_STRING", "")
    return rest, (query if query else None)
