"""The client's request body: size (413) and content-type (415) checks, read at once
when small, streamed when large."""

from __future__ import annotations

import time

from gunicorn.http.errors import ParseException

from core.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType

from . import content

SMALL_BODY = 64 * 1024  # request bodies up to this are read at once (replayable)
CHUNK = 64 * 1024
# What reading the client's body raises when the client is at fault: the connection
# broke or stalled past XENX_CLIENT_TIMEOUT (OSError), or its chunked framing is
# broken (gunicorn's ParseException: a bad chunk size, a missing CRLF, ...).
CLIENT_READ_ERRORS = (OSError, ParseException)
# Upstreams give up on a request body that stops arriving (nginx's
# client_body_timeout, a WSGI server's worker timeout): once the gateway has waited
# this long in all for the client's body while streaming it, an upstream that closes
# or resets the connection may be answering the client's stall.
CLIENT_STALL_SECONDS = 1.0


class BodyTooLarge(Exception):
    pass


class ClientBodyError(Exception):
    """The client's body broke off (short of its Content-Length, or a read error): the
    client's fault, so it is a 400 and never counts against the upstream's health."""


class _StreamedBody:
    """The client's body read in chunks as it is sent upstream, counted against the
    service's limit (a chunked upload has no Content-Length to check up front)."""

    def __init__(self, stream, length: int | None, limit: int, prefix: bytes = b""):
        self.stream, self.remaining, self.limit = stream, length, limit
        self.prefix = prefix  # read ahead already (counted in ``length``)
        if prefix and length is not None:
            self.remaining = length - len(prefix)
        self.read_bytes = 0
        self.waited = 0.0  # seconds spent waiting for the client's bytes

    def _read(self, size: int) -> bytes:
        started = time.monotonic()
        try:
            return self.stream.read(size)
        except CLIENT_READ_ERRORS as exc:  # gone, stalled past the timeout, misframed
            raise ClientBodyError() from exc
        finally:
            self.waited += time.monotonic() - started

    def __iter__(self):
        if self.prefix:
            self.read_bytes = len(self.prefix)
            yield self.prefix
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


def _read_ahead(stream, size: int) -> bytes:
    """Up to ``size`` bytes of the client's body: fewer only at its end (a WSGI input's
    ``read(n)`` waits for ``n`` bytes or the end)."""
    try:
        return stream.read(size)
    except CLIENT_READ_ERRORS as exc:  # gone, stalled past the timeout, misframed
        raise ClientBodyError() from exc


def client_stalled(body, failure) -> bool:
    """Whether an upstream's failure may be the client's doing, and must then never
    count against the instance (README "Gateway"): the upstream closed, reset or broke
    off the exchange (not a timeout of its own) while the gateway streamed a body the
    client was slow to send."""
    return (
        isinstance(body, _StreamedBody)
        and not failure.timeout
        and body.waited >= CLIENT_STALL_SECONDS
    )


def request_body(request, svc):
    """(body, length): None, bytes, or a chunk iterator, after the size (413) and
    content-type (415) checks.

    A body is there only when the request says so: a Content-Length, or a
    Transfer-Encoding the server de-chunks (``wsgi.input_terminated``). gunicorn sets
    that flag on every request, so it alone says nothing. Up to ``min(max_body_bytes +
    1, 64 KiB)`` is read before any upstream is contacted (as nginx does): a body over
    the limit within that window never reaches one, and a body that ends within it is
    sent as bytes with its Content-Length (replayable on a retry)."""
    meta = request.META
    raw_length = meta.get("CONTENT_LENGTH")
    stream = meta["wsgi.input"]
    limit = svc.max_body_bytes
    if raw_length:
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise MalformedRequest("Invalid Content-Length.")
        length = int(raw_length)
        if length > limit:
            raise PayloadTooLarge(
                f"The body may be at most {limit} bytes for this service."
            )
    elif meta.get("HTTP_TRANSFER_ENCODING") and meta.get("wsgi.input_terminated"):
        length = None  # chunked from the client: the server de-chunks it
    else:
        length = 0  # neither header: no body, whatever the server's flags
    if length == 0:
        return None, 0
    patterns = svc.allowed_content_types
    mime = content.media_type(meta.get("CONTENT_TYPE", ""))
    if patterns and not content.allowed(mime, patterns):
        raise UnsupportedMediaType(
            f"Service {svc.name!r} does not accept {mime or 'an untyped body'}."
        )
    window = min(limit + 1, SMALL_BODY) if length is None else min(length, SMALL_BODY)
    try:
        head = _read_ahead(stream, window)
    except ClientBodyError:
        raise MalformedRequest("The body broke off.") from None
    if len(head) > limit:
        raise PayloadTooLarge(
            f"The body may be at most {limit} bytes for this service."
        )
    if length is None and len(head) < window:
        length = len(head)  # the whole body arrived within the window
        if not length:
            return None, 0
    elif length is not None and len(head) < window:
        raise MalformedRequest("The body ended before its Content-Length.")
    if length is not None and length == len(head):
        body = head
    else:
        body = _StreamedBody(stream, length, limit, prefix=head)
    if patterns and mime.startswith("multipart/"):
        return _judged_multipart(meta, body, length, limit, patterns)
    return body, length


def _judged_multipart(meta, body, length, limit, patterns):
    """A multipart body is read whole (spooled when large) and every part judged
    before any of it is forwarded."""
    content_type = meta.get("CONTENT_TYPE", "")
    if isinstance(body, bytes):
        content.check_multipart(content_type, body, patterns)
        return body, length
    try:
        spooled = content.spool(body)
    except BodyTooLarge:
        raise PayloadTooLarge() from None
    except ClientBodyError:
        raise MalformedRequest("The body ended before its Content-Length.") from None
    content.check_multipart(content_type, spooled, patterns)
    spooled.seek(0, 2)
    size = spooled.tell()
    spooled.seek(0)
    return _StreamedBody(spooled, size, limit), size
