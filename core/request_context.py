"""Request-scoped values that logging needs outside the request object."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("xenx_request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("xenx_user_id", default=None)
