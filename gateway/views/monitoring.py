"""GET /health (aggregate, README "Gateway" (health)) and GET /metrics (Prometheus
text)."""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from accounts.policy import Door, bearer_token, token_identity
from core.errors import ApiError, api_error_response, error_response
from core.health import dependencies
from core.roles import Role

from .. import metrics, selectors
from ..proxy import metrics_token_ok


@csrf_exempt  # a POST is 405, not the CSRF check's 403
@require_GET
def health(request):
    checks, ok = dependencies()
    services = {}
    if checks["database"]["status"] == "ok":
        all_services = [s for s in selectors.service_list() if s.enabled]
        instances = [i for s in all_services for i in s.instances.all() if i.enabled]
        health_by_id = selectors.instance_health(instances)
        for service in all_services:
            services[service.name] = selectors.service_health(service, health_by_id)
    checks["services"] = services
    if not ok:
        status = "down"
    elif any(s["status"] != "ok" for s in services.values()):
        status = "degraded"
    else:
        status = "ok"
    response = JsonResponse(
        {"status": status, "checks": checks}, status=200 if ok else 503
    )
    response.xenx_passthrough = True  # the 503 body is the health report itself
    return response


@csrf_exempt
@require_GET
def metrics_view(request):
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if not auth:
        return error_response(request, 401)  # with its challenge
    if not metrics_token_ok(auth):
        try:
            identity = token_identity(bearer_token(auth), door=Door.METRICS)
        except ApiError as exc:
            return api_error_response(request, exc)
        if identity.role != Role.ADMIN:
            return error_response(request, 403)
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
