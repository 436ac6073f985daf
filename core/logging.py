"""Logging carrying the request id: one JSON object per line in production (and tests),
one readable line per record in development."""

import json
import logging
from datetime import UTC, datetime

from .request_context import current_request_id, current_user_id

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        if not hasattr(record, "request_id"):
            request = getattr(record, "request", None)
            record.request_id = (
                getattr(request, "request_id", None) or current_request_id()
            )
        if not hasattr(record, "user_id"):
            record.user_id = current_user_id()
        return True


def _extras(record) -> dict:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``15:04:05.123 INFO xenx.access GET /health 200 … request_id=…``: the record's
    fields that are set, on one line (control characters escaped, so a client's input
    cannot start a line of its own); a traceback follows, indented."""

    def format(self, record):
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        parts = [when, f"{record.levelname:<7}", record.name, record.getMessage()]
        parts += [
            f"{key}={value}"
            for key, value in _extras(record).items()
            if isinstance(value, str | int | float) and value != ""  # not objects
        ]
        line = " ".join(str(p) for p in parts).translate(_ESCAPES)
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join("    " + t for t in trace.splitlines())
        return line


_ESCAPES = {n: f"\\x{n:02x}" for n in (*range(32), 127) if n != 9}


def formatter_for(settings_module: str) -> logging.Formatter:
    """The format of the settings named: readable lines in development only."""
    if settings_module.endswith(".development") or not settings_module:
        return TextFormatter()
    return JsonFormatter()
