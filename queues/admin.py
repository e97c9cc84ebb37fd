from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import Q
from django.urls import reverse

from .models import Reroute, RerouteEvent
from .sparkbot import DEVICE_ID


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


class RequestedByFilter(admin.SimpleListFilter):
    """Who asked, listed from the users table (small) rather than from millions of reroutes."""

    title = "requested by"
    parameter_name = "requested_by_username"

    def lookups(self, request, model_admin):
        names = get_user_model().objects.order_by("username").values_list("username", flat=True)[:200]
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(requested_by_username=self.value()) if self.value() else queryset


@admin.register(Reroute)
class RerouteAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "requested_by_username", "origin", "source_alias", "source_phone",
                    "target_alias", "target_phone", "status", "messages_moved"]
    list_filter = ["status", "origin", RequestedByFilter, "created_at"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    show_full_result_count = False  # no second COUNT(*) over the whole log
    search_fields = ["search_text"]  # searched by get_search_results below, through the indexes
    search_help_text = ("A reroute number, a 24-character device id, a username, or words of the note, "
                        "an alias or a phone.")
    inlines = [RerouteEventInline]

    def get_search_results(self, request, queryset, search_term):
        """Each term through an index: id, device id, username (exact) or the lower-case search text."""
        for term in search_term.split():
            matches = Q(search_text__contains=term.lower()) | Q(requested_by_username=term)
            if term.isdigit() and int(term) < 2**63:
                matches |= Q(pk=int(term))
            if DEVICE_ID.match(term.lower()):
                matches |= Q(source_id=term.lower()) | Q(target_id=term.lower())
            queryset = queryset.filter(matches)
        return queryset, False

    def view_on_site(self, obj):
        return reverse("queues:reroute_detail", args=[obj.pk])


@admin.register(RerouteEvent)
class RerouteEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "reroute", "kind", "message"]
    list_filter = ["kind", "at"]  # no date_hierarchy: "at" has no index, and its year list would read every event
    list_select_related = ["reroute"]
    ordering = ["-id"]
    show_full_result_count = False
    search_fields = ["message"]
    search_help_text = "A reroute number (its events), or words of an event's message."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit() and int(term) < 2**63:
            return queryset.filter(reroute_id=int(term)), False
        return super().get_search_results(request, queryset, search_term)


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
