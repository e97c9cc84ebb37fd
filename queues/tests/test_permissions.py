"""The sign-in backend reads a user's permissions in one query, and they are Django's own answer."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from queues.permissions import OneQueryModelBackend
from queues.roles import ADMIN, SHIFT_MANAGER, SUPPORT_LEAD, roles_ensure

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)  # no permissions cached on it


def users():
    roles_ensure(Group, Permission)  # a transactional test before this one may have flushed the roles
    User = get_user_model()
    lead = User.objects.create_user("lead-only")
    lead.groups.add(Group.objects.get(name=SUPPORT_LEAD))
    two_roles = User.objects.create_user("two-roles")
    two_roles.groups.add(Group.objects.get(name=SHIFT_MANAGER), Group.objects.get(name=ADMIN))
    direct = User.objects.create_user("direct-and-group")
    direct.groups.add(Group.objects.get(name=SUPPORT_LEAD))
    direct.user_permissions.add(Permission.objects.get(codename="export_reroutes"))
    inactive = User.objects.create_user("inactive", is_active=False)
    inactive.groups.add(Group.objects.get(name=ADMIN))
    return [lead, two_roles, direct, inactive, User.objects.create_user("no-role"),
            User.objects.create_superuser("root")]


def named(prefix: str):
    return get_user_model().objects.get(username__startswith=prefix)


def test_it_answers_as_django_does_for_every_kind_of_user():
    for user in users():
        expected = ModelBackend().get_all_permissions(fresh(user))
        assert OneQueryModelBackend().get_all_permissions(fresh(user)) == expected, user.username
    assert "queues.export_reroutes" in OneQueryModelBackend().get_all_permissions(fresh(named("direct")))


def test_the_backend_in_use_reads_them_in_one_query_once_a_request():
    users()
    user = fresh(named("two-roles"))
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("queues.add_reroute") and user.has_perm("queues.manage_all_tokens")
        assert not user.has_perm("queues.no_such_thing")
    assert len(queries) == 1  # Django's own backend reads the user's and the groups' apart: two
