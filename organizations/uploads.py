"""Document bytes in and out, the same for the API and the portal: the upload size
guard (before and while the body is read) and the download response."""

from __future__ import annotations

import logging

from django.core.files.uploadhandler import FileUploadHandler
from django.http import FileResponse

from core.errors import NotFound, PayloadTooLarge

from .services import max_upload_bytes

logger = logging.getLogger(__name__)
# Multipart framing around the file part: a body this much over the limit cannot fit.
MULTIPART_SLACK = 64 * 1024


class UploadLimitHandler(FileUploadHandler):
    """First in the upload handler chain: counts each file's bytes as they arrive and
    aborts with 413 past the limit, before the rest is spooled to disk."""

    def __init__(self, limit: int, request=None):
        super().__init__(request)
        self.limit = limit

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            raise PayloadTooLarge(f"The file is larger than {self.limit} bytes.")
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler builds the file


def guard_upload(request) -> int:
    """Before anything reads the body of ``request`` (a Django HttpRequest): refuse a
    declared body that cannot fit (413), and stop reading a file part as soon as it
    passes ``XENX_MAX_UPLOAD_BYTES`` (chunked bodies). Returns the limit."""
    limit = max_upload_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + MULTIPART_SLACK:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes.")
    request.upload_handlers.insert(0, UploadLimitHandler(limit))
    return limit


# A refused upload's body is read and dropped up to this many times the limit before
# the answer: a browser still sending when the server answers and closes the
# connection shows a reset connection (Chromium: ERR_CONNECTION_RESET), never the
# answer. Beyond it, the connection is closed unread (the client sees the reset).
DRAIN_FACTOR = 4
_DRAIN_CHUNK = 64 * 1024


def drain_refused_body(request) -> bool:
    """Read what is left of a refused upload's body (up to ``DRAIN_FACTOR`` times the
    limit) so that the client can read the answer; True when it was all read. The
    kernel receive timeout of XENX's worker bounds a client that stops sending."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    if not 0 < declared <= DRAIN_FACTOR * max_upload_bytes():
        return False
    try:
        while request.read(_DRAIN_CHUNK):
            pass
    except OSError:  # UnreadablePostError included: the client went away
        return False
    return True


def document_file_response(document) -> FileResponse:
    """The stored file as an attachment with its stored type, never sniffed or cached;
    NotFound when the file is missing from storage."""
    try:
        stream = document.file.open("rb")
    except FileNotFoundError:
        logger.error("stored file missing for document %s", document.pk)
        raise NotFound("The file of this document is missing.") from None
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=document.original_filename or f"document-{document.pk}",
        content_type=document.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
