from django.contrib.admin import AdminSite

from queues.roles import ADMIN


class DashboardAdminSite(AdminSite):
    """The Django admin, open to staff and to members of the Admin role."""

    site_header = "SparkBot queue router: administration"
    site_title = "SparkBot queue router"

    def has_permission(self, request):
        user = request.user
        return user.is_active and (user.is_staff or user.groups.filter(name=ADMIN).exists())
