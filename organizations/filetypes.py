"""Deciding what an uploaded file is from its bytes (README "Organizations, users and
documents").

Binary formats by magic number through the ``filetype`` library; XLSX and DOCX, which
are ZIP containers, by the package's own parts (``[Content_Types].xml`` plus the
workbook or document part) so an arbitrary ZIP is refused; plain text and CSV as valid
UTF-8 without NUL bytes. The client's file name and declared Content-Type decide
nothing, except that an extension contradicting the bytes is refused.
"""

from __future__ import annotations

import codecs
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import filetype

from core.errors import UnsupportedMediaType

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TEXT = "text/plain"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# Detected type → (extensions the client's name may carry, extension we store it under).
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    PDF: (frozenset({".pdf"}), ".pdf"),
    PNG: (frozenset({".png"}), ".png"),
    JPEG: (frozenset({".jpg", ".jpeg", ".jpe"}), ".jpg"),
    TEXT: (frozenset({".txt", ".text", ".csv", ".tsv"}), ".txt"),
    XLSX: (frozenset({".xlsx"}), ".xlsx"),
    DOCX: (frozenset({".docx"}), ".docx"),
}
_ZIP_MIMES = {"application/zip", XLSX, DOCX}
HEAD_BYTES = 8192
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Sniffed:
    mime: str  # the type stored and served (text gets its charset)
    extension: str  # the extension of the stored name


def _refuse(message: str):
    raise UnsupportedMediaType(message)


def _office_type(fileobj) -> str | None:
    """XLSX or DOCX when the ZIP is that kind of OOXML package, else None."""
    try:
        fileobj.seek(0)
        with zipfile.ZipFile(fileobj) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "xl/workbook.xml" in names:
        return XLSX
    if "word/document.xml" in names:
        return DOCX
    return None


def _is_utf8_text(fileobj) -> bool:
    fileobj.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := fileobj.read(CHUNK):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff(fileobj, filename: str) -> Sniffed:
    """The allowed type of ``fileobj`` judged by its bytes; 415 otherwise, or when the
    extension of ``filename`` contradicts the bytes. Leaves ``fileobj`` at position 0."""
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    kind = filetype.guess(head) if head else None
    if kind is not None and kind.mime in _ZIP_MIMES:
        mime = _office_type(fileobj)
        if mime is None:
            _refuse("ZIP archives other than XLSX and DOCX documents are not accepted.")
    elif kind is not None:
        if kind.mime not in ALLOWED:
            _refuse(f"Files of type {kind.mime} are not accepted.")
        mime = kind.mime
    elif _is_utf8_text(fileobj):
        mime = TEXT
    else:
        _refuse(
            "Only PDF, PNG, JPEG, UTF-8 text or CSV, XLSX and DOCX files are accepted."
        )
    fileobj.seek(0)
    suffix = PurePosixPath(filename or "").suffix.lower()
    extensions, stored_extension = ALLOWED[mime]
    if suffix and suffix not in extensions:
        _refuse(f"The file's content ({mime}) does not match its name ({suffix}).")
    if mime == TEXT:
        if suffix == ".csv":
            return Sniffed(f"{CSV}; charset=utf-8", ".csv")
        return Sniffed(f"{TEXT}; charset=utf-8", stored_extension)
    return Sniffed(mime, stored_extension)
