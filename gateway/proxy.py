"""``ANY /api/{service}/{path}``: the view that runs a proxied call through the
pipeline (``gateway.pipeline``) and renders, in this one place, whatever a step raised.

A plain Django view (no DRF, no session, no CSRF, no user lookup): in the steady state
it costs no database query and one cache round trip.
"""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt

from core.errors import error_response, response_for_exception

from . import metrics
from .pipeline import Call, run
from .validators import RESERVED_NAMES


@csrf_exempt
def proxy_view(request, service, rest=None):
    if service in RESERVED_NAMES:  # a platform route that does not exist
        return error_response(request, 404)
    start = time.perf_counter()
    call = Call(request, service)
    try:
        response = run(call)
    except Exception as exc:  # noqa: BLE001 - the one renderer of a call's failure
        response = response_for_exception(request, exc)
    if call.limit_headers:  # digits only: written straight into the header store
        store = response.headers._store
        for name, value in call.limit_headers.items():
            store[name.lower()] = (name, value)
    svc = call.service
    metrics.observe(
        svc.name if svc else "_unknown",
        request.method,
        response.status_code,
        time.perf_counter() - start,
    )
    return response


def metrics_token_ok(auth: str) -> bool:
    token = settings.XENX_METRICS_TOKEN
    # bytes: compare_digest refuses non-ASCII text (Bearer café was a 500)
    expected = f"Bearer {token}".encode()
    given = auth.encode("utf-8", "surrogatepass")
    return bool(token) and hmac.compare_digest(given, expected)
