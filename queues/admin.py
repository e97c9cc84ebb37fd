from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from .models import Reroute, RerouteEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit log is append-only: the admin shows it and changes nothing."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RerouteEventInline(admin.TabularInline):
    model = RerouteEvent
    fields = ["at", "kind", "message", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Reroute)
class RerouteAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "requested_by_username", "source_alias", "target_alias", "status",
                    "messages_moved"]
    list_filter = ["status", "origin"]
    search_fields = ["source_alias", "source_phone", "target_alias", "target_phone", "note",
                     "requested_by_username"]
    inlines = [RerouteEventInline]


@admin.register(RerouteEvent)
class RerouteEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "reroute", "kind", "message"]
    list_filter = ["kind"]


class RoleAwareUserAdmin(UserAdmin):
    """Admins manage users and their roles; only a superuser grants superuser, staff or single permissions."""

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, "is_superuser", "is_staff", "user_permissions")

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)


admin.site.unregister(User)
admin.site.register(User, RoleAwareUserAdmin)
