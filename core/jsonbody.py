"""JSON request bodies: the one place their size and nesting depth are capped.

Size: a JSON body is read at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (Django applies
that setting to form bodies, never to the stream DRF's parsers read): a larger one is
413 ``payload_too_large``. ``core.middleware.BodyLimitMiddleware`` refuses it by its Content-Length
before anything is read, and reads a chunked one (no Content-Length) with a bounded
read; the parser reads at most one byte past the limit in any case.

Depth: Python's ``json`` recurses once per nested array or object, so a body of
100,000 ``[`` ends in ``RecursionError`` (a 500). Bodies are checked before they are
parsed, in time linear in their size: the bracket count is taken at C speed, and only
a body holding more brackets than the cap has its strings cut out (one regular
expression whose every quantifier is possessive, so it never backtracks and a string
left open runs to the end of the body instead of being tried again at every later
quote) and the depth of what is left measured.
"""

from __future__ import annotations

import io
import itertools
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as _DrfJSONParser

from .errors import PayloadTooLarge

MAX_DEPTH = 100
# A JSON string, closed or left open to the end of the body (a lone backslash last).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# An opening bracket counts +1, a closing one -1 (indexed by the byte's value).
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class TooDeep(ValueError):
    pass


def check_depth(data: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when arrays/objects in ``data`` nest deeper than ``limit``."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit:
        raise TooDeep(f"JSON nested deeper than {limit} levels.")


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type, with or without parameters."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def body_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"A JSON body may be at most {body_limit()} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    )


class JSONParser(_DrfJSONParser):
    """DRF's JSON parser with the size cap (413) and the depth cap (400
    ``malformed_request``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = body_limit()
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise too_large()
        try:
            check_depth(data)
        except TooDeep as exc:
            raise ParseError(str(exc)) from None
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:  # a backstop: check_depth should have caught it
            raise ParseError("JSON nested too deeply.") from None
