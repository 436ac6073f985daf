"""/api/organizations..., /api/documents..."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=False)
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("documents", views.DocumentViewSet, basename="document")

urlpatterns = router.urls
