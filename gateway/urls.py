"""The gateway's routes: /health, /metrics and the catch-all /api/{service}/{path}."""

urlpatterns: list = []
