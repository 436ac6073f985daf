"""Content-type policy: the request's media type, and for multipart bodies the media
type of every file part judged by its first bytes (``filetype``), not by its label."""

from __future__ import annotations

import io
import tempfile

import filetype
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from xenx.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType

SNIFF_BYTES = 8192
# Types filetype cannot recognise by magic bytes: a part may claim one of these when
# its bytes match no known binary format.
TEXTUAL = ("text/", "application/json", "application/xml", "application/x-ndjson")
SPOOL_MEMORY = 1024 * 1024


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def allowed(mime: str, patterns: tuple) -> bool:
    for pattern in patterns:
        if pattern == mime:
            return True
        if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
            return True
    return False


def detected_type(head: bytes, declared: str) -> str:
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return kind.mime
    declared = media_type(declared or "")
    if declared.startswith(TEXTUAL):
        return declared
    return "application/octet-stream"


class _SniffHandler(FileUploadHandler):
    """Keeps the first bytes of each file part and discards the rest (no disk)."""

    def __init__(self, request=None):
        super().__init__(request)
        self.parts = []

    def new_file(
        self,
        field_name,
        file_name,
        content_type,
        content_length,
        charset=None,
        content_type_extra=None,
    ):  # noqa: E501
        super().new_file(field_name, file_name, content_type, content_length, charset)
        self.parts.append([file_name, content_type, b""])
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data, start):
        part = self.parts[-1]
        if len(part[2]) < SNIFF_BYTES:
            part[2] += raw_data[: SNIFF_BYTES - len(part[2])]
        return None

    def file_complete(self, file_size):
        return None


def check_multipart(meta: dict, body: io.IOBase, patterns: tuple) -> None:
    """Raise UnsupportedMediaType when a file part's bytes are not an allowed type."""
    handler = _SniffHandler()
    meta = {**meta, "CONTENT_LENGTH": str(_size(body))}
    try:
        parser = MultiPartParser(meta, body, [handler], "utf-8")
        parser.parse()
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(
            "A form field of the multipart body is too large."
        ) from exc
    except (MultiPartParserError, SuspiciousOperation) as exc:
        raise MalformedRequest("The multipart body is malformed.") from exc
    for file_name, declared, head in handler.parts:
        mime = detected_type(head, declared)
        if not allowed(mime, patterns):
            raise UnsupportedMediaType(
                f"File part {file_name!r} is {mime}, which this service does not accept."
            )


def _size(body) -> int:
    position = body.tell()
    body.seek(0, io.SEEK_END)
    size = body.tell()
    body.seek(position)
    return size


def spool(chunks) -> tempfile.SpooledTemporaryFile:
    """Write a body to a spooled file (memory up to 1 MiB, then disk) and rewind it."""
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    for chunk in chunks:
        spooled.write(chunk)
    spooled.seek(0)
    return spooled
