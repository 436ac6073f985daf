from django.urls import include, path

urlpatterns = [
    path("auth/", include("accounts.auth_urls")),
    path("", include("accounts.user_urls")),
]
