"""/api/organizations..., /api/documents..."""

urlpatterns: list = []
