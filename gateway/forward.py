"""The pipeline's last step: the upstream request's headers, instance choice over the
circuits the round trip read, retries and the breaker's bookkeeping (README
"Gateway"); the answer relayed by ``gateway.relay``."""

from __future__ import annotations

import logging

from django.conf import settings

from core.errors import (
    ApiError,
    MalformedRequest,
    PayloadTooLarge,
    ServiceUnavailable,
)
from core.net import forwarded_chain

from . import assertions, breaker, machines, metrics
from .body import BodyTooLarge, ClientBodyError, client_stalled
from .headers import client_headers, sandbox
from .relay import relay
from .upstream import RequestRejected, UpstreamError, consumed, pool_for

logger = logging.getLogger("xenx.gateway")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def _upstream_headers(request, svc, identity, length) -> dict:
    meta = request.META
    connection_named = set()
    conn = meta.get("HTTP_CONNECTION")
    if conn:
        connection_named = {
            "HTTP_" + t.strip().upper().replace("-", "_")
            for t in conn.split(",")
            if t.strip()
        }
    headers = client_headers(meta, svc.forwarded_keys, connection_named)
    content_type = meta.get("CONTENT_TYPE")
    if content_type:
        headers["Content-Type"] = content_type
    if length:
        headers["Content-Length"] = str(length)
    if svc.forward_authorization and meta.get("HTTP_AUTHORIZATION"):
        headers["Authorization"] = meta["HTTP_AUTHORIZATION"]
    headers["X-Forwarded-For"] = ", ".join(forwarded_chain(request))
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.xenx_host
    headers["X-Request-ID"] = request.request_id
    if identity is not None and identity.is_machine:  # README "Machine clients"
        headers.update(machines.upstream_headers(svc, identity, request.request_id))
    elif identity is not None:
        headers["X-User-Id"] = str(identity.user_id)
        email = identity.email
        if not email.isascii():  # an IDN domain: its UTF-8 bytes, as latin-1 text
            email = email.encode().decode("latin-1")
        headers["X-User-Email"] = email
        headers["X-User-Role"] = identity.role
        if identity.org_id is not None:
            headers["X-Organization-Id"] = str(identity.org_id)
        if svc.sign_identity:
            headers[assertions.HEADER] = assertions.assertion_for(
                identity, svc.name, request.request_id
            )
    return headers


def forward(call):
    """Send the call to an instance whose circuit is closed (or the half-open one whose
    trial it won), retry as the service allows, and relay the answer; raise 503 with
    no instance left, 502 or 504 when they failed."""
    request, svc = call.request, call.service
    healthy, trial, failing = breaker.choose(call.circuits, svc.timeout)
    if not healthy and trial is None:
        raise ServiceUnavailable(
            f"No healthy instance of service {svc.name!r}.",
            headers={"Retry-After": str(breaker.OPEN_SECONDS)},
        )
    body, length = call.body, call.length
    headers = _upstream_headers(request, svc, call.identity, length)
    method = request.method
    connect_timeout = min(svc.timeout, settings.XENX_GATEWAY_CONNECT_TIMEOUT)
    url_query = "?" + call.query if call.query is not None else ""
    replayable = body is None or isinstance(body, bytes)
    chunked = not replayable and length is None
    tries = svc.retries + 1
    last: UpstreamError | None = None
    remaining = list(healthy)
    inst = trial
    while tries > 0:
        if inst is None:
            if not remaining:
                break
            inst = svc.pick(remaining)
            remaining.remove(inst)
        tries -= 1
        try:
            upstream = pool_for(inst).request(
                method,
                _target(inst.base_path, call.rest) + url_query,
                headers,
                body,
                connect_timeout=connect_timeout,
                read_timeout=svc.timeout,
                chunked=chunked,
            )
        except BodyTooLarge:
            raise PayloadTooLarge() from None
        except ClientBodyError:
            raise MalformedRequest(
                "The body ended before its Content-Length."
            ) from None
        except RequestRejected:
            raise MalformedRequest("A header holds a control character.") from None
        except UpstreamError as failure:
            if client_stalled(body, failure):  # the client's fault, not the instance's
                raise MalformedRequest(
                    "The body came too slowly for the upstream."
                ) from None
            last = failure
            metrics.UPSTREAM_ERRORS.labels(svc.name, failure.kind).inc()
            breaker.record_failure(inst.id, trial=inst is trial)
            logger.warning(
                "upstream failure",
                extra={"service": svc.name, "instance": inst.url, "kind": failure.kind},
            )
            inst = None
            if failure.kind == "read_timeout":
                break  # the upstream had the request: waiting again doubles the wait
            if failure.sent and (method not in IDEMPOTENT or not replayable):
                break
            if not replayable and consumed(body):
                break
            continue
        if inst is trial or inst.id in failing:
            breaker.record_success(inst.id)
        return sandbox(relay(request, upstream), svc.serves_pages)
    if last is not None and last.timeout:
        raise ApiError(
            "The upstream service did not answer in time.",
            status=504,
            code="gateway_timeout",
        )
    raise ApiError("The upstream service failed.", status=502, code="bad_gateway")


def _target(base_path: str, rest: str) -> str:
    """The request-target's path: the instance's base path and the rest of the
    client's path, always starting with ``/`` (``/api/svc`` → the base path, or ``/``)."""
    path = base_path + rest
    return path if path.startswith("/") else "/" + path
