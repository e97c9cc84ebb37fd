"""Django's ModelBackend, reading a user's permissions (their own and their groups') in one query.

Django reads them in two, once per request that checks a permission; the route page and every
reroute submitted through it check one (docs/PERFORMANCE.md). What a user may do is the same.
"""

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            held = (Permission.objects.all() if user_obj.is_superuser
                    else Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj)))
            user_obj._perm_cache = {f"{app}.{code}" for app, code in
                                    held.values_list("content_type__app_label", "codename").order_by()}
        return user_obj._perm_cache
