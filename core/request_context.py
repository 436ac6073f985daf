"""Request-scoped values that logging needs outside the request object.

One ``LogContext`` per request, opened and closed by
``core.middleware.RequestIdMiddleware``: a worker thread serves one request after
another, and a value left from the last one (its user id) would be logged as this
one's. One context variable, not one per value: setting and resetting a context
variable copies its mapping, and the gateway's public call is short enough for that to
show (README "Benchmark")."""

from contextvars import ContextVar


class LogContext:
    __slots__ = ("request_id", "user_id")

    def __init__(self, request_id: str | None = None):
        self.request_id = request_id
        self.user_id: int | None = None


log_context: ContextVar[LogContext | None] = ContextVar(
    "xenx_log_context", default=None
)


def current_request_id() -> str | None:
    context = log_context.get()
    return None if context is None else context.request_id


def current_user_id() -> int | None:
    context = log_context.get()
    return None if context is None else context.user_id


def set_user_id(user_id: int | None) -> None:
    """The request's user for the log lines after this one; outside a request, none."""
    context = log_context.get()
    if context is not None:
        context.user_id = user_id
