"""The admin shows the audit log read-only; the models keep it append-only through every interface."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from queues.models import AuditLogIsAppendOnly, Reroute, RerouteEvent
from sparkbot_sandbox.seed import SALES_3, SALES_4

pytestmark = pytest.mark.django_db
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
NOTE = f"night shift {SCRIPT} {IMG}"



def reroute_seed(*, user=None, status=Reroute.Status.SUCCEEDED, source_id=SALES_3, **fields):
    """A reroute written as the worker leaves it (ended unless told), with hostile text, and two events."""
    ended = status in Reroute.ENDED
    reroute = Reroute.objects.create(
        requested_by=user, requested_by_username=user.get_username() if user else "gone", note=NOTE,
        source_id=source_id, source_alias=f"Sales-3 {SCRIPT}", source_phone="+447700900003",
        target_id=SALES_4, target_alias=f"Sales-4 {IMG}", target_phone="+447700900004",
        status=status, attempts=1, messages_moved=37 if ended else None, ended_at=timezone.now() if ended else None,
        **fields,
    )
    RerouteEvent.objects.create(reroute=reroute, kind="requested", message=f"asked {SCRIPT}")
    RerouteEvent.objects.create(reroute=reroute, kind="call", message=f"answered {IMG}", detail={"note": SCRIPT})
    return reroute


@pytest.fixture(params=["admin-role", "superuser"])
def admin_client(request, client, make_user):
    if request.param == "superuser":
        user = User.objects.create_superuser("root", password="root-password-123")
    else:
        user = make_user("admin", "Admin")
        assert not user.is_staff and not user.is_superuser
    client.force_login(user)
    return client


@pytest.fixture
def reroute(lead):
    return reroute_seed(user=lead)


def admin_urls(reroute):
    event = reroute.events.first()
    return {
        "reroute changelist": "/admin/queues/reroute/",
        "reroute change page": f"/admin/queues/reroute/{reroute.pk}/change/",
        "event changelist": "/admin/queues/rerouteevent/",
        "event change page": f"/admin/queues/rerouteevent/{event.pk}/change/",
    }


def snapshot(reroute):
    fields = ("note", "source_alias", "status", "messages_moved", "requested_by_id", "updated_at")
    return (
        Reroute.objects.filter(pk=reroute.pk).values(*fields).get(),
        list(RerouteEvent.objects.filter(reroute=reroute).values("id", "kind", "message", "detail")),
    )


# The admin --------------------------------------------------------------------------------


def test_it_shows_the_audit_log_with_its_text_escaped(admin_client, reroute):
    for name, url in admin_urls(reroute).items():
        response = admin_client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, name
        assert SCRIPT not in html and IMG not in html, name
        assert SCRIPT_ESCAPED in html and IMG_ESCAPED in html, name
    change_page = admin_client.get(f"/admin/queues/reroute/{reroute.pk}/change/").content.decode()
    assert f"night shift {SCRIPT_ESCAPED} {IMG_ESCAPED}" in change_page  # the note
    assert "answered " + IMG_ESCAPED in change_page  # the events inline


def test_it_shows_the_change_pages_read_only(admin_client, reroute):
    for name, url in admin_urls(reroute).items():
        response = admin_client.get(url)
        html = response.content.decode()
        assert not re.search(r"/admin/queues/\w+/(add|\d+/delete)/", html), name
        if name.endswith("change page"):
            assert response.context["has_change_permission"] is False, name
            assert 'class="closelink"' in html and 'name="_save"' not in html and 'name="_continue"' not in html
            assert not re.search(r'<(input|textarea|select)[^>]+name="(note|message|source_alias|status|kind)"', html)


def test_it_refuses_changes_through_the_change_form(admin_client, reroute):
    before = snapshot(reroute)
    event = reroute.events.first()
    form = {"note": "rewritten", "source_alias": "Sales-9", "status": "failed", "messages_moved": "0", "_save": "Save"}
    assert admin_client.post(f"/admin/queues/reroute/{reroute.pk}/change/", form).status_code == 403
    assert admin_client.post(f"/admin/queues/reroute/{reroute.pk}/change/",
                             {**form, "_continue": "1"}).status_code == 403
    assert admin_client.post(f"/admin/queues/rerouteevent/{event.pk}/change/",
                             {"message": "rewritten", "kind": "failed"}).status_code == 403
    assert snapshot(reroute) == before


def test_it_refuses_deleting_and_adding(admin_client, reroute):
    before = snapshot(reroute)
    event = reroute.events.first()
    for url in (f"/admin/queues/reroute/{reroute.pk}/delete/", f"/admin/queues/rerouteevent/{event.pk}/delete/"):
        assert admin_client.get(url).status_code == 403, url
        assert admin_client.post(url, {"post": "yes"}).status_code == 403, url
    for url in ("/admin/queues/reroute/add/", "/admin/queues/rerouteevent/add/"):
        assert admin_client.get(url).status_code == 403, url
        assert admin_client.post(url, {"note": "forged", "message": "forged"}).status_code == 403, url
    assert snapshot(reroute) == before and Reroute.objects.count() == 1 and RerouteEvent.objects.count() == 2


def test_it_offers_no_delete_selected_action(admin_client, reroute):
    for url in ("/admin/queues/reroute/", "/admin/queues/rerouteevent/"):
        response = admin_client.get(url)
        html = response.content.decode()
        assert "delete_selected" not in html and 'name="action"' not in html, url
        assert response.context["cl"].model_admin.get_actions(response.wsgi_request) == {}, url
    event_ids = list(RerouteEvent.objects.values_list("pk", flat=True))
    forced = [
        admin_client.post("/admin/queues/reroute/", {"action": "delete_selected", "post": "yes",
                                                     "_selected_action": [reroute.pk], "index": "0"}),
        admin_client.post("/admin/queues/rerouteevent/", {"action": "delete_selected", "post": "yes",
                                                          "_selected_action": event_ids, "index": "0"}),
    ]
    assert [response.status_code for response in forced] == [200, 200]  # just the list again: no such action
    assert Reroute.objects.count() == 1 and RerouteEvent.objects.count() == 2


def test_it_links_no_add_page_from_the_index(admin_client, reroute):
    html = admin_client.get("/admin/").content.decode()
    assert 'href="/admin/queues/reroute/"' in html and 'href="/admin/queues/rerouteevent/"' in html
    assert "/admin/queues/reroute/add/" not in html and "/admin/queues/rerouteevent/add/" not in html


# The models -------------------------------------------------------------------------------


def test_it_refuses_to_save_an_ended_reroute(reroute):
    reroute.note = "rewritten"
    with pytest.raises(AuditLogIsAppendOnly):
        reroute.save()
    stored = Reroute.objects.get(pk=reroute.pk)
    stored.note = "rewritten"
    with pytest.raises(AuditLogIsAppendOnly):
        stored.save(update_fields=["note"])
    assert Reroute.objects.get(pk=reroute.pk).note == NOTE


def test_it_lets_the_worker_save_a_running_reroute_until_it_ends(lead):
    running = reroute_seed(user=lead, status=Reroute.Status.QUEUED)
    running.status = Reroute.Status.RUNNING
    running.save(update_fields=["status"])
    stored = Reroute.objects.get(pk=running.pk)
    stored.attempts = 2
    stored.save()
    stored.status, stored.messages_moved = Reroute.Status.FAILED, 0
    stored.save()  # the save that ends it
    stored.note = "after the end"
    with pytest.raises(AuditLogIsAppendOnly):
        stored.save()
    assert Reroute.objects.filter(pk=running.pk).values_list("status", "attempts", "note").get() == \
        ("failed", 2, NOTE)


def test_it_refuses_to_change_an_event(reroute):
    for event in (reroute.events.first(), RerouteEvent.objects.get(kind="call")):
        event.message = "rewritten"
        with pytest.raises(AuditLogIsAppendOnly):
            event.save()
    assert list(reroute.events.values_list("message", flat=True)) == [f"asked {SCRIPT}", f"answered {IMG}"]


def test_it_refuses_to_delete_a_reroute_or_an_event(reroute, lead):
    running = reroute_seed(user=lead, status=Reroute.Status.RUNNING, source_id="65a000000000000000000001")
    for instance in (reroute, running, reroute.events.first()):
        with pytest.raises(AuditLogIsAppendOnly):
            instance.delete()
    deletes = [Reroute.objects.all().delete, Reroute.objects.filter(pk=running.pk).delete,
               RerouteEvent.objects.all().delete, reroute.events.all().delete, lead.reroutes.all().delete]
    for delete in deletes:
        with pytest.raises(AuditLogIsAppendOnly):
            delete()
    assert Reroute.objects.count() == 2 and RerouteEvent.objects.count() == 4


def test_it_keeps_who_asked_when_the_user_is_deleted(make_user):
    leaver = make_user("leaver", "Support lead")
    reroute = reroute_seed(user=leaver)
    leaver.delete()
    stored = Reroute.objects.get(pk=reroute.pk)
    assert (stored.requested_by_id, stored.requested_by_username) == (None, "leaver")
    assert stored.note == NOTE and stored.events.count() == 2


def test_it_keeps_who_asked_when_the_admin_deletes_the_user(client, make_user):
    client.force_login(make_user("admin", "Admin"))
    leaver = make_user("leaver", "Support lead")
    reroute = reroute_seed(user=leaver)
    response = client.post(f"/admin/auth/user/{leaver.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not User.objects.filter(username="leaver").exists()
    stored = Reroute.objects.get(pk=reroute.pk)
    assert (stored.requested_by_id, stored.requested_by_username) == (None, "leaver")
    html = client.get(f"/admin/queues/reroute/{reroute.pk}/change/").content.decode()
    assert "leaver" in html


def test_it_lets_an_admin_manage_roles_but_not_grant_superuser(client, admin_user, make_user):
    client.force_login(admin_user)
    lead = make_user("newlead", None)
    page = client.get(f"/admin/auth/user/{lead.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data.update(username="newlead", groups=[Group.objects.get(name="Support lead").pk],
                is_superuser="on", is_staff="on", is_active="on", date_joined_0="2026-01-01",
                date_joined_1="00:00:00", last_login_0="", last_login_1="")
    data.pop("password", None)
    data.pop("user_permissions", None)
    response = client.post(f"/admin/auth/user/{lead.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    lead.refresh_from_db()
    assert list(lead.groups.values_list("name", flat=True)) == ["Support lead"]
    assert not lead.is_superuser and not lead.is_staff
    admin_user.refresh_from_db()
    assert not admin_user.is_superuser


def test_it_keeps_superusers_out_of_an_admins_reach(client, admin_user, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-password-123")
    client.force_login(admin_user)
    assert client.get(f"/admin/auth/user/{root.pk}/change/").status_code in (200, 403)
    assert client.post(f"/admin/auth/user/{root.pk}/change/", {"username": "taken"}).status_code == 403
    assert client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code == 403
    root.refresh_from_db()
    assert root.username == "root"


def test_it_refuses_bulk_updates_and_deletes_through_every_manager(db):
    reroute = reroute_seed()
    with pytest.raises(AuditLogIsAppendOnly):
        Reroute.objects.filter(pk=reroute.pk).update(note="rewritten")
    with pytest.raises(AuditLogIsAppendOnly):
        RerouteEvent.objects.filter(reroute=reroute).update(message="rewritten")
    with pytest.raises(AuditLogIsAppendOnly):
        Reroute.objects.bulk_update([reroute], ["note"])
    with pytest.raises(AuditLogIsAppendOnly):
        Reroute._base_manager.all().delete()
    with pytest.raises(AuditLogIsAppendOnly):
        RerouteEvent._base_manager.all().delete()
    assert Reroute.objects.get(pk=reroute.pk).note == reroute.note
