"""/api/users... (user management)."""

urlpatterns: list = []
