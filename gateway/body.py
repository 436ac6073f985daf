"""The client's request body: size (413) and content-type (415) checks, read at once
when small, streamed when large."""

from __future__ import annotations

from xenx.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType

from . import content

SMALL_BODY = 64 * 1024  # request bodies up to this are read at once (replayable)
CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    pass


class ClientBodyError(Exception):
    """The client's body broke off (short of its Content-Length, or a read error): the
    client's fault, so it is a 400 and never counts against the upstream's health."""


class _StreamedBody:
    """The client's body read in chunks as it is sent upstream, counted against the
    service's limit (a chunked upload has no Content-Length to check up front)."""

    def __init__(self, stream, length: int | None, limit: int):
        self.stream, self.remaining, self.limit = stream, length, limit
        self.read_bytes = 0

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except OSError as exc:  # the client went away or stalled past the timeout
            raise ClientBodyError() from exc

    def __iter__(self):
        while True:
            if self.remaining is None:
                chunk = self._read(CHUNK)
            elif self.remaining <= 0:
                return
            else:
                chunk = self._read(min(CHUNK, self.remaining))
                self.remaining -= len(chunk)
                if not chunk:
                    raise ClientBodyError()
            if not chunk:
                return
            self.read_bytes += len(chunk)
            if self.read_bytes > self.limit:
                raise BodyTooLarge()
            yield chunk


def request_body(request, svc):
    """(body, length): bytes, a chunk iterator or a spooled file, after the size
    (413) and content-type (415) checks."""
    meta = request.META
    raw_length = meta.get("CONTENT_LENGTH")
    stream = meta["wsgi.input"]
    length = None
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            raise MalformedRequest("Invalid Content-Length.") from None
        if length < 0:
            raise MalformedRequest("Invalid Content-Length.")
        if length > svc.max_body_bytes:
            raise PayloadTooLarge(
                f"The body may be at most {svc.max_body_bytes} bytes for this service."
            )
    elif not meta.get("wsgi.input_terminated"):
        length = 0  # no length and a server that cannot signal the end: no body
    if length == 0:
        return None, 0
    patterns = svc.allowed_content_types
    if patterns:
        mime = content.media_type(meta.get("CONTENT_TYPE", ""))
        if not content.allowed(mime, patterns):
            raise UnsupportedMediaType(
                f"Service {svc.name!r} does not accept {mime or 'an untyped body'}."
            )
    if length is not None and length <= SMALL_BODY:
        data = stream.read(length)
        if len(data) < length:
            raise MalformedRequest("The body ended before its Content-Length.")
        body = data
    else:
        body = _StreamedBody(stream, length, svc.max_body_bytes)
    if patterns and content.media_type(meta.get("CONTENT_TYPE", "")).startswith(
        "multipart/"
    ):
        try:
            spooled = content.spool([body] if isinstance(body, bytes) else body)
        except BodyTooLarge:
            raise PayloadTooLarge() from None
        except ClientBodyError:
            raise MalformedRequest(
                "The body ended before its Content-Length."
            ) from None
        content.check_multipart(meta, spooled, patterns)
        spooled.seek(0)
        if length is None:  # chunked from the client: now the size is known
            spooled.seek(0, 2)
            length = spooled.tell()
            spooled.seek(0)
        return _StreamedBody(spooled, length, svc.max_body_bytes), length
    return body, length
