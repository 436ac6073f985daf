"""JSON request bodies: the one place their nesting depth is capped.

Python's ``json`` recurses once per nested array or object, so a body of 100,000 ``[``
ends in ``RecursionError`` (a 500). Bodies are checked before they are parsed: the
bracket count is taken at C speed, and only a body holding more brackets than the cap
is scanned for its real depth (brackets inside strings do not count).
"""

from __future__ import annotations

import io
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as _DrfJSONParser

MAX_DEPTH = 100
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


class TooDeep(ValueError):
    pass


def check_depth(data: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when arrays/objects in ``data`` nest deeper than ``limit``."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise TooDeep(f"JSON nested deeper than {limit} levels.")
        elif token in (b"]", b"}"):
            depth -= 1


class JSONParser(_DrfJSONParser):
    """DRF's JSON parser with the depth cap (400 ``malformed_request``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            check_depth(data)
        except TooDeep as exc:
            raise ParseError(str(exc)) from None
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:  # a backstop: check_depth should have caught it
            raise ParseError("JSON nested too deeply.") from None
