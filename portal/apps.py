from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    default = True
    name = "portal"
    verbose_name = "Web portal"


class XenxAdminConfig(admin_apps.AdminConfig):
    """Django admin on the XenX admin site (``portal.admin_site.XenxAdminSite``)."""

    default = False
    default_site = "portal.admin_site.XenxAdminSite"
