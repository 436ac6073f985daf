"""/api/users... (user management)."""

from rest_framework.routers import SimpleRouter

from .views import users as user_views

router = SimpleRouter(trailing_slash=False)
router.register("users", user_views.UserViewSet, basename="user")

urlpatterns = router.urls
