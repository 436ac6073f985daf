from django.urls import path, re_path

from . import views

urlpatterns = [
    path("json", views.bare),
    re_path(r"^api/echo/(?P<path>.*)$", views.revproxy_view),
]
