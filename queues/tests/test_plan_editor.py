"""The handover plan editor (views/plans.py) through Django's test client: one shared list of numbers,
moves by id, phone or alias, row operations with and without htmx, bulk paste, "move every chosen number",
CSV import and export, and damaged forms answered 400."""

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from queues import handovers
from queues.models import HandoverPlan
from sparkbot_sandbox.seed import (
    DISABLED_DEVICE, HTML_ALIAS_DEVICE, MISSING_DEVICE, OFFLINE_DEVICE, SALES_1, SALES_2, SALES_3, SALES_4,
)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]
HTMX = {"HTTP_HX_REQUEST": "true"}
NEW = "/handovers/plans/new/"


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def plan_form(pairs, *, name="Night to Day", total=None, **fields) -> dict:
    data = {"name": name, "schedule": "none", "time_zone": "UTC", "pairs-TOTAL_FORMS": str(len(pairs) if total is None
                                                                                            else total), **fields}
    for n, (source, target) in enumerate(pairs):
        data[f"pairs-{n}-source"], data[f"pairs-{n}-target"] = source, target
    return data


def rows(html: str) -> list[tuple[str, str]]:
    """(source text, target text) of every filled row, in order."""
    found = dict(re.findall(r'name="pairs-(\d+-(?:source|target))" value="([^"]*)"', html))
    count = len([k for k in found if k.endswith("source")])
    pairs = [(found[f"{n}-source"], found[f"{n}-target"]) for n in range(count)]
    return [pair for pair in pairs if any(pair)]


def saved(plan=None) -> list[tuple[str, str]]:
    plan = plan or HandoverPlan.objects.get()
    return list(plan.pairs.values_list("source_id", "target_id"))


def test_it_shares_one_list_of_numbers_instead_of_a_select_per_row(manager_client, sandbox, manager):
    plan = handovers.plan_save(plan=HandoverPlan(name="Night"), pairs=[(SALES_1, SALES_4), (SALES_3, SALES_2)],
                               user=manager)
    html = manager_client.get(f"/handovers/plans/{plan.pk}/").content.decode()
    assert html.count('<datalist id="numbers">') == 1 and html.count('list="numbers"') == (2 + 5) * 2 + 1
    assert html.count("<select") == 3  # schedule, time zone, "move every chosen number": none per row
    assert rows(html) == [("Sales-1", "Sales-4"), ("Sales-3", "Sales-2")]
    assert '<option value="Sales-3">Sales-3 · +447700900003 · can deliver now</option>' in html


def test_it_saves_moves_named_by_id_phone_or_alias(manager_client, sandbox):
    response = manager_client.post(NEW, plan_form([("Sales-1", "+44 7700 900004"), (SALES_3, "sales-2"),
                                                   ("", "")]))
    assert response.status_code == 302
    assert saved() == [(SALES_1, SALES_4), (SALES_3, SALES_2)]


@pytest.mark.parametrize("pairs, message", [
    ([("Sales", SALES_4)], "No number is called “Sales”; did you mean one of these? Sales-1 (+447700900001)"),
    ([("Nobody", SALES_4)], "No number in SparkBot&#x27;s device list is called “Nobody”"),
    ([(MISSING_DEVICE, SALES_4)], "no longer in SparkBot&#x27;s device list"),
    ([(SALES_1, "Billing Desk")], "Billing Desk (+447700900010) cannot receive a queue"),
    ([(SALES_1, "Sales-1")], "A number cannot hand its queue to itself."),
])
def test_it_marks_the_row_that_needs_a_fix_and_saves_nothing(manager_client, sandbox, pairs, message):
    response = manager_client.post(NEW, plan_form([(SALES_2, SALES_4), *pairs]))
    html = response.content.decode()
    assert response.status_code == 200 and not HandoverPlan.objects.exists()
    assert message in html and "Some moves need a fix: see the rows marked below." in html
    assert re.search(r'id="pairs-1-(source|target)"[^>]*aria-invalid="true" aria-describedby="pairs-1-\1-error"',
                     html)
    assert rows(html)[1][0] == pairs[0][0]  # what was typed stays


def test_it_moves_and_removes_rows_without_javascript(manager_client, sandbox):
    pairs = [(SALES_1, SALES_4), (SALES_2, SALES_4), (SALES_3, SALES_4)]
    down = manager_client.post(NEW, plan_form(pairs, op="down-0"))
    html = down.content.decode()
    assert down.status_code == 200 and not HandoverPlan.objects.exists()
    assert [source for source, _ in rows(html)] == [SALES_2, SALES_1, SALES_3]
    assert "Row 1 moved down to row 2." in html
    assert re.search(r'value="down-1"[^>]*autofocus', html)  # the keyboard stays on the moved row
    removed = manager_client.post(NEW, plan_form(pairs, op="remove-1")).content.decode()
    assert [source for source, _ in rows(removed)] == [SALES_1, SALES_3] and "Row 2" in removed
    assert re.search(r'value="remove-1"[^>]*autofocus', removed)
    first_up = manager_client.post(NEW, plan_form(pairs, op="up-0")).content.decode()
    assert "Row 1 is already the first." in first_up and rows(first_up)[0][0] == SALES_1


def test_it_moves_rows_in_place_with_htmx(manager_client, sandbox):
    pairs = [(SALES_1, SALES_4), (SALES_2, SALES_4), (SALES_3, SALES_4)]
    response = manager_client.post(NEW, plan_form(pairs, op="up-2"), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert (response["HX-Retarget"], response["HX-Reswap"], response["HX-Reselect"]) == ("#pairs", "outerHTML",
                                                                                         "#pairs")
    assert html.lstrip().startswith('<fieldset id="pairs"') and "<html" not in html
    assert [source for source, _ in rows(html)] == [SALES_1, SALES_3, SALES_2]
    saved_now = manager_client.post(NEW, plan_form(rows(html), name="Reordered"))
    assert saved_now.status_code == 302 and saved() == [(SALES_1, SALES_4), (SALES_3, SALES_4), (SALES_2, SALES_4)]


def test_it_answers_htmx_with_a_redirect_once_saved(manager_client, sandbox):
    response = manager_client.post(NEW, plan_form([(SALES_1, SALES_4)]), **HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == "/handovers/"
    assert "Saved “Night to Day”: 1 move." in manager_client.get("/handovers/").content.decode()


def test_it_adds_pasted_lines_when_every_line_is_good(manager_client, sandbox):
    paste = "Sales-1, Sales-4\n\n+447700900003\tSales-2\n\"Sales-2\"; Sales-4\n"
    html = manager_client.post(NEW, plan_form([(SALES_1, SALES_2)], op="paste", paste=paste)).content.decode()
    assert "Added 2 moves and gave 1 a new target." in html
    assert rows(html) == [(SALES_1, "Sales-4"), ("Sales-3", "Sales-2"), ("Sales-2", "Sales-4")]
    assert 'name="paste" rows="4"' in html and "Sales-1, Sales-4</textarea>" not in html  # the box is emptied
    assert not HandoverPlan.objects.exists()


def test_it_reports_each_bad_pasted_line_by_its_number_and_adds_nothing(manager_client, sandbox):
    paste = ("Sales-1, Sales-4\n"
             "Sales-3\n"
             "Salse-3, Sales-4\n"
             "Sales-2, Sales-2\n"
             "Sales-1, Sales-3\n"
             "Sales-3, Billing Desk\n"
             "Sales-2, Sales-4, Sales-1\n")
    html = manager_client.post(NEW, plan_form([], op="paste", paste=paste)).content.decode()
    errors = re.search(r'<div id="paste-errors".*?</div>', html, re.S).group(0)
    assert "Nothing was added" in errors and rows(html) == []
    assert "Line 2: give two numbers separated by a comma" in errors
    assert "Line 3: No number in SparkBot&#x27;s device list is called “Salse-3”" in errors
    assert "Line 4: Sales-2 (+447700900002) cannot hand its queue to itself." in errors
    assert "Line 5: Sales-1 already hands its queue over on line 1" in errors
    assert "Line 6: Billing Desk (+447700900010) cannot receive a queue" in errors
    assert "Line 7: give two numbers" in errors and "Line 1:" not in errors
    assert "Salse-3, Sales-4" in html  # the text stays to be fixed
    assert 'aria-invalid="true"' in html.split('id="id_paste"')[1][:200]


def test_it_moves_every_chosen_number_to_one_target(manager_client, sandbox):
    form = plan_form([(SALES_1, SALES_2)], op="bulk", bulk_sources=[SALES_1, SALES_3, HTML_ALIAS_DEVICE],
                     bulk_target="Sales-4")
    html = manager_client.post(NEW, form).content.decode()
    assert "Added 2 moves and gave 1 a new target." in html
    assert [target for _, target in rows(html)] == ["Sales-4", "Sales-4", "Sales-4"]
    refused = manager_client.post(NEW, plan_form([], op="bulk", bulk_sources=[SALES_1, SALES_4],
                                                 bulk_target="Sales-4")).content.decode()
    assert "Sales-4 (+447700900004) is among the chosen numbers" in refused and rows(refused) == []
    assert f'<option value="{SALES_1}" selected>' in refused  # the choice stays to be fixed
    nothing = manager_client.post(NEW, plan_form([], op="bulk", bulk_target="Sales-4")).content.decode()
    assert "Choose the numbers whose queues move." in nothing


def test_it_exports_a_plan_as_csv_and_imports_it_back(manager_client, sandbox, manager):
    plan = handovers.plan_save(plan=HandoverPlan(name="Night shift"), pairs=[(SALES_1, SALES_4), (SALES_3, SALES_2)],
                               user=manager)
    export = manager_client.get(f"/handovers/plans/{plan.pk}/export.csv")
    assert export["Content-Disposition"] == 'attachment; filename="plan-night-shift.csv"'
    lines = list(csv.reader(io.StringIO(export.content.decode())))
    assert lines == [["source", "target", "source_alias", "source_phone", "target_alias", "target_phone"],
                     [SALES_1, SALES_4, "Sales-1", "'+447700900001", "Sales-4", "'+447700900004"],
                     [SALES_3, SALES_2, "Sales-3", "'+447700900003", "Sales-2", "'+447700900002"]]
    upload = SimpleUploadedFile("plan.csv", export.content, content_type="text/csv")
    form = plan_form([(SALES_4, SALES_1)], op="import", plan_file=upload)
    html = manager_client.post(f"/handovers/plans/{plan.pk}/", form).content.decode()
    assert "The file&#x27;s 2 moves are in the plan now, in place of the earlier ones." in html
    assert rows(html) == [("Sales-1", "Sales-4"), ("Sales-3", "Sales-2")]


@pytest.mark.parametrize("content, error", [
    ("source,target\nSales-1,Nobody\n", "Line 2: No number in SparkBot&#x27;s device list is called “Nobody”"),
    ("Sales-1;Sales-4\nSales-3\n", "Line 2: give two numbers"),
    (b"\xff\xfe\x00bad", "The file is not UTF-8 text"),
    ("", "There is no move to add"),
])
def test_it_imports_nothing_from_a_file_with_a_bad_line(manager_client, sandbox, content, error):
    raw = content if isinstance(content, bytes) else content.encode()
    form = plan_form([(SALES_2, SALES_4)], op="import", plan_file=SimpleUploadedFile("plan.csv", raw))
    html = manager_client.post(NEW, form).content.decode()
    assert error in html and "Nothing was imported" in html
    assert rows(html) == [(SALES_2, SALES_4)]


@pytest.mark.parametrize("total", ["abc", "1.5", "-1", "1e3", " "])
def test_it_answers_a_damaged_row_count_with_400_and_a_message(manager_client, sandbox, total):
    response = manager_client.post(NEW, plan_form([(SALES_1, SALES_4)], total=total))
    html = response.content.decode()
    assert response.status_code == 400 and "The plan&#x27;s form arrived damaged" in html
    assert "Nothing was saved." in html and not HandoverPlan.objects.exists()


def test_it_answers_htmx_with_the_400_message_in_place(manager_client, sandbox):
    response = manager_client.post(NEW, plan_form([(SALES_1, SALES_4)], total="abc", op="up-0"), **HTMX)
    assert response.status_code == 400 and response.content.decode().lstrip().startswith('<section id="plan-form"')


def test_it_clamps_a_huge_row_count_to_the_plans_maximum(manager_client, sandbox, settings):
    settings.HANDOVER_PLAN_MAX_PAIRS = 50
    response = manager_client.post(NEW, plan_form([(SALES_1, SALES_4)], total="100000", op="more"))
    html = response.content.decode()
    assert response.status_code == 200 and len(html) < 100_000
    assert html.count('list="numbers" data-picker') <= 50 * 2 + 1
    too_many = manager_client.post(NEW, plan_form([(SALES_1, SALES_4)], total="100000"))
    assert too_many.status_code == 302 and saved() == [(SALES_1, SALES_4)]


@pytest.mark.parametrize("fields, message", [
    ({"op": "drop-table"}, "an action this page does not have"),
    ({"op": "up-99999999"}, "an action this page does not have"),
    ({"pairs-0-source": "x" * 5000}, "arrived damaged"),
    ({"pairs-0-source": "Sales\x00-1"}, "arrived damaged"),
    ({"op": "bulk", "bulk_sources": ["<script>"], "bulk_target": "Sales-4"}, "arrived damaged"),
])
def test_it_answers_other_damaged_input_with_400_never_500(manager_client, sandbox, fields, message):
    response = manager_client.post(NEW, {**plan_form([(SALES_1, SALES_4)]), **fields})
    assert response.status_code == 400 and message in response.content.decode()


@pytest.mark.parametrize("fields", [
    {"schedule": "once", "run_at": "9999-12-31T23:59", "time_zone": "Pacific/Honolulu"},
    {"schedule": "once", "run_at": "0001-01-01T00:00", "time_zone": "Asia/Tokyo"},
    {"schedule": "daily", "daily_time": "25:99"},
    {"time_zone": "Mars/Olympus"},
    {"schedule": "sometimes"},
    {"name": "x" * 5000},
    {"in_order": ["on", "off"], "pause_sources": "\x00"},
])
def test_it_explains_odd_settings_instead_of_failing(manager_client, sandbox, fields):
    response = manager_client.post(NEW, {**plan_form([(SALES_1, SALES_4)]), **fields})
    assert response.status_code in (200, 302)
    if response.status_code == 200:
        assert 'class="errorlist' in response.content.decode()


def test_it_lays_out_each_checkbox_with_its_label_and_explanation(manager_client, sandbox):
    html = manager_client.get(NEW).content.decode()
    for name in ("pause_sources", "in_order"):
        block = re.search(rf'<div class="check">\s*<input type="checkbox" name="{name}"[^>]*>.*?</div>\s*</div>', html,
                          re.S).group(0)
        assert f'aria-describedby="id_{name}-help"' in block and f'<small id="id_{name}-help"' in block
        assert f'<label for="id_{name}">' in block


def test_it_puts_save_plan_first_so_that_enter_saves(manager_client, sandbox):
    html = manager_client.get(NEW).content.decode()
    form = re.search(r'<form id="plan-form".*?</form>', html, re.S).group(0)
    first = re.search(r"<button[^>]*>[^<]*</button>", form).group(0)
    assert 'value="save"' in first and "Save plan" in first


def test_it_refuses_a_disabled_target_but_takes_one_that_is_offline_now(manager_client, sandbox):
    response = manager_client.post(NEW, plan_form([(SALES_1, OFFLINE_DEVICE), (SALES_3, DISABLED_DEVICE)]))
    html = response.content.decode()
    assert "Billing Desk (+447700900010) cannot receive a queue" in html  # disabled: refused
    assert "pairs-0-target-error" not in html  # offline now but usable: a plan may still move to it


def test_it_adds_nothing_that_would_take_the_plan_past_its_maximum(manager_client, sandbox, settings):
    settings.HANDOVER_PLAN_MAX_PAIRS = 2
    form = plan_form([(SALES_1, SALES_2), (SALES_3, SALES_2)], op="paste", paste="Sales-1, Sales-4\nSales-2, Sales-4")
    html = manager_client.post(NEW, form).content.decode()
    assert "The plan would hold 3 moves; a plan holds at most 2." in html
    assert rows(html) == [(SALES_1, SALES_2), (SALES_3, SALES_2)]  # not even Sales-1's new target


def test_it_moves_the_row_asked_for_when_two_rows_read_the_same(manager_client, sandbox):
    pairs = [(SALES_1, SALES_4), (SALES_2, SALES_4), (SALES_1, SALES_4)]
    html = manager_client.post(NEW, plan_form(pairs, op="up-2")).content.decode()
    assert rows(html) == [(SALES_1, SALES_4), (SALES_1, SALES_4), (SALES_2, SALES_4)]
    assert re.search(r'value="up-1"[^>]*autofocus', html)
    first = manager_client.post(NEW, plan_form(pairs, op="up-0")).content.decode()
    assert re.search(r'value="down-0"[^>]*autofocus', first)  # its own "up" is off
