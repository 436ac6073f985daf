from django.conf import settings
from django.http import HttpResponse
from revproxy.views import ProxyView


def bare(request):
    """(c) Django's ceiling: the upstream's JSON answered without proxying."""
    return HttpResponse(settings.BENCH_BODY, content_type="application/json")


# (b) django-revproxy as its README configures it: one ProxyView with an upstream.
revproxy_view = ProxyView.as_view(upstream=settings.BENCH_UPSTREAM)
