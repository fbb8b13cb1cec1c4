"""Writes through the views, against the sandbox over real HTTP: each form posts what its
rendered page holds, and we check what the page shows and what the sandbox received."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.test import Client

from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import deal_get
from tests.deals.demo_deals import a_deal, url, writes

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Each write re-reads the deal first: the per-second budgets are not under test here."""


def text(response) -> str:
    return response.content.decode()


def form_fields(html: str, form_id_or_action: str) -> dict[str, str]:
    """The hidden inputs of the rendered form whose id or action matches, as a browser posts."""
    form = re.search(
        rf'<form[^>]*(?:id="{form_id_or_action}"|action="{re.escape(form_id_or_action)}").*?</form>',
        html,
        re.S,
    ).group(0)
    return {
        name: html_lib.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    }


def edit_form(client: Client, detail, field_name: str) -> dict[str, str]:
    """Open a field's inline form as htmx does and return what its Save would post."""
    html = text(client.get(url("field_edit", detail, field_name), **HTMX))
    return form_fields(html, url("field_save", detail, field_name))


# --- Inline field edits -----------------------------------------------------------------------


def test_renaming_a_nodestash_deal_swaps_the_new_name_in_and_refreshes_title_and_history(
    sales_client, sandbox
):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "name")
    assert data["original"] == detail.deal.name
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "Renamed by the view"}, **HTMX
    )
    html = text(response)

    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="field" id="field-name">')
    assert "Renamed by the view" in html
    assert '<h1 id="deal-title" hx-swap-oob="true">Renamed by the view</h1>' in html
    assert re.search(r'<section id="history" [^>]*hx-swap-oob="true">', html)
    assert "Saved" in html and "Renamed by the view" in html.split('id="history"')[1]
    (patch,) = writes(sandbox, "nodestash")
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        f"/v1/deals/{detail.deal.id}",
        {"title": "Renamed by the view"},
    )
    assert patch.headers["idempotency-key"] == data["idempotency_key"]


def test_saving_a_value_sends_the_number_and_shows_it_with_its_currency(sales_client, sandbox):
    detail = a_deal("nodestash", where=lambda d: d.deal.value and d.deal.value.currency == "EUR")
    data = edit_form(sales_client, detail, "value")
    sandbox.clear_log()

    html = text(
        sales_client.post(url("field_save", detail, "value"), {**data, "value": "1250.50"}, **HTMX)
    )

    assert "€1,250.50" in html
    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"value": 1250.5}


def test_saving_tags_and_a_date_sends_them_in_the_api_shape(sales_client, sandbox):
    detail = a_deal("nodestash")
    tags = edit_form(sales_client, detail, "tags")
    sandbox.clear_log()
    sales_client.post(url("field_save", detail, "tags"), {**tags, "tags": "vip, urgent"}, **HTMX)
    closing = edit_form(sales_client, detail, "expected_close_date")
    sales_client.post(
        url("field_save", detail, "expected_close_date"),
        {**closing, "expected_close_date": "2027-01-31"},
        **HTMX,
    )

    assert [r.body for r in writes(sandbox, "nodestash")] == [
        {"tags": ["vip", "urgent"]},
        {"expected_close_date": "2027-01-31"},
    ]


def test_saving_a_stora_note_and_assignee(sales_client, sandbox):
    detail = a_deal("stora")
    assignee = next(f for f in detail.fields if f.name == "assignee")
    other = next(c for c in assignee.choices if c.value and c.value != assignee.value)
    note = edit_form(sales_client, detail, "note")
    sandbox.clear_log()
    sales_client.post(url("field_save", detail, "note"), {**note, "note": "Call Monday"}, **HTMX)
    owner = edit_form(sales_client, detail, "assignee")
    html = text(
        sales_client.post(
            url("field_save", detail, "assignee"), {**owner, "assignee": other.value}, **HTMX
        )
    )

    assert html_lib.escape(other.label) in html
    assert [r.body for r in writes(sandbox, "stora")] == [
        {"note": "Call Monday"},
        {"assignee": {"id": other.value}},
    ]


def test_a_save_without_htmx_redirects_back_to_the_page_with_its_list_filters(
    sales_client, sandbox
):
    detail = a_deal("stora")
    data = edit_form(sales_client, detail, "name")

    response = sales_client.post(
        url("field_save", detail, "name"),
        {**data, "name": "Saved without JavaScript", "from": "status=open"},
    )

    assert response.status_code == 302
    assert response["Location"] == url("detail", detail) + "?from=status%3Dopen"
    assert "Saved without JavaScript" in text(sales_client.get(response["Location"]))


def test_bad_input_comes_back_422_with_a_message_and_the_typed_value(sales_client, sandbox):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "value")
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "value"), {**data, "value": "lots"}, **HTMX
    )
    html = text(response)

    assert response.status_code == 422
    assert 'value="lots"' in html
    assert '<p class="field-error" id="id_value_error" role="alert">' in html
    assert "Enter an amount in numbers" in html
    assert 'aria-invalid="true"' in html
    assert writes(sandbox, "nodestash") == []


def test_bad_input_without_htmx_renders_the_whole_page_with_the_form_open(sales_client):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "expected_close_date")

    response = sales_client.post(
        url("field_save", detail, "expected_close_date"),
        {**data, "expected_close_date": "someday"},
    )
    html = text(response)

    assert response.status_code == 422
    assert "<html" in html
    assert "Enter a date like 2025-03-31." in html
    assert 'value="someday"' in html


def test_an_upstream_validation_error_shows_next_to_the_input_and_keeps_the_typed_value(
    sales_client, sandbox
):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "tags")
    many = ", ".join(f"tag{i}" for i in range(25))

    response = sales_client.post(url("field_save", detail, "tags"), {**data, "tags": many}, **HTMX)
    html = text(response)

    assert response.status_code == 422
    assert re.search(r'<p class="field-error" id="id_tags_error" role="alert">[^<]*20', html)
    assert f'value="{many}"' in html
    assert AuditEntry.objects.get().outcome == AuditEntry.Outcome.FAILED


def test_a_conflict_shows_the_current_value_and_offers_apply_or_discard(sales_client, sandbox):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "name")
    sandbox.mutate_deal("nodestash", detail.deal.id, {"title": "Changed elsewhere"})
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "My new name"}, **HTMX
    )
    html = text(response)

    assert response.status_code == 409
    assert 'role="alert"' in html
    assert '<span class="conflict-current">Changed elsewhere</span>' in html
    assert 'value="My new name"' in html
    assert ">Apply my change anyway</button>" in html
    assert ">Discard my change</button>" in html
    assert writes(sandbox, "nodestash") == []  # nothing overwritten silently
    history = re.search(r'<section id="history" [^>]*hx-swap-oob="true">.*?</section>', html, re.S)
    assert "Refused: changed upstream" in history.group(0)
    again = form_fields(html, url("field_save", detail, "name"))
    assert again["original"] == "Changed elsewhere"
    assert again["idempotency_key"] != data["idempotency_key"]

    applied = sales_client.post(
        url("field_save", detail, "name"), {**again, "name": "My new name"}, **HTMX
    )

    assert applied.status_code == 200
    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"title": "My new name"}


def test_discarding_after_a_conflict_shows_the_upstream_value(sales_client, sandbox):
    detail = a_deal("stora")
    data = edit_form(sales_client, detail, "name")
    sandbox.mutate_deal("stora", detail.deal.id, {"name": "Renamed upstream"})
    conflict = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "My new name"}, **HTMX
    )
    assert conflict.status_code == 409
    sandbox.clear_log()

    # Discard: the field as the store has it now, which the refused save's re-read updated.
    html = text(sales_client.get(url("field_display", detail, "name"), **HTMX))

    assert "Renamed upstream" in html
    assert ">Edit Name</button>" in html
    assert sandbox.requests("stora") == []


def test_a_rate_limited_write_says_when_to_try_again_and_keeps_the_form(sales_client, sandbox):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "name")
    sandbox.fail_next(
        "nodestash",
        1,
        429,
        body={"error": {"code": "RATE_LIMITED", "message": "Slow down", "retry_after": 4}},
        headers={"Retry-After": "4"},
    )

    response = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "Patient rename"}, **HTMX
    )
    html = text(response)

    assert response.status_code == 429
    assert response["Retry-After"] == "4"
    assert "try again in 4 s" in html
    assert 'value="Patient rename"' in html


def test_an_outage_during_a_write_returns_the_form_with_an_alert_not_a_500(sales_client, sandbox):
    detail = a_deal("stora")
    data = edit_form(sales_client, detail, "note")
    sandbox.set_outage("stora", True)

    response = sales_client.post(
        url("field_save", detail, "note"), {**data, "note": "Lost in transit"}, **HTMX
    )
    html = text(response)

    assert response.status_code == 503
    assert 'role="alert"' in html and "Stora" in html
    assert html.lstrip().startswith('<div class="field is-editing" id="field-note">')
    assert "Lost in transit</textarea>" in html  # what was typed is kept


def test_a_rejected_key_during_a_write_asks_for_an_admin(sales_client, connections):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "name")
    connection = connections["nodestash"]
    connection.set_api_key("nds_test_wrong")
    connection.save()

    response = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "Never sent"}, **HTMX
    )

    assert response.status_code == 502
    assert "An admin must update it." in text(response)


def test_the_same_submit_twice_acts_once(sales_client, sandbox):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "name")
    sandbox.clear_log()

    for _ in range(2):
        sales_client.post(url("field_save", detail, "name"), {**data, "name": "Once"}, **HTMX)

    assert len(writes(sandbox, "nodestash")) == 1


def test_cancel_without_javascript_goes_back_without_writing(sales_client, sandbox):
    detail = a_deal("stora")
    data = edit_form(sales_client, detail, "name")
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "Not saved", "cancel": "1"}
    )

    assert response.status_code == 302
    assert writes(sandbox, "stora") == []


# --- Stage, won, lost, reopen ----------------------------------------------------------------


def state_form(client: Client, detail, action_url: str) -> dict[str, str]:
    return form_fields(text(client.get(url("detail", detail))), action_url)


def test_changing_stage_updates_the_state_region_fields_and_history(sales_client, sandbox):
    detail = a_deal("nodestash")
    target = next(s for s in detail.actions.stage_choices if s.id != detail.deal.stage.id)
    data = state_form(sales_client, detail, url("change_stage", detail))
    assert data["original_stage"] == detail.deal.stage.id
    assert data["original_status"] == "open"
    sandbox.clear_log()

    response = sales_client.post(url("change_stage", detail), {**data, "stage": target.id}, **HTMX)
    html = text(response)

    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="deal-state"')
    current = re.search(r'<li class="step step-current" aria-current="step">(.*?)</li>', html, re.S)
    assert current and f"{target.name}<span" in current.group(1)  # the stage bar's current step
    assert (
        'id="deal-fields" class="card" aria-labelledby="fields-heading" hx-swap-oob="true"' in html
    )
    assert "Change stage" in html.split('id="history"')[1]
    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"stage_id": target.id}


def test_marking_a_stora_deal_won_then_reopening_it(sales_client, sandbox):
    detail = a_deal("stora")
    data = state_form(sales_client, detail, url("mark_won", detail))
    sandbox.clear_log()

    won = text(sales_client.post(url("mark_won", detail), data, **HTMX))

    assert '<span id="status-badge" class="badge badge-lg badge-won">Won</span>' in won
    assert ">Reopen</button>" in won and ">Mark won</button>" not in won
    (win,) = writes(sandbox, "stora")
    assert win.path == f"/2025-09/deals/{detail.deal.id}/win"

    reopen_html = text(sales_client.get(url("reopen_form", detail), **HTMX))
    reopen = form_fields(reopen_html, "reopen-form")
    closed = deal_get(connection_slug="stora", deal_id=detail.deal.id)
    stage = closed.actions.reopen_stages[-1]
    assignee = closed.actions.reopen_assignees[0]
    sandbox.clear_log()

    reopened = text(
        sales_client.post(
            url("reopen", detail),
            {**reopen, "stage": stage.id, "assignee": assignee.value},
            **HTMX,
        )
    )

    assert 'class="badge badge-lg badge-open">Open</span>' in reopened
    (post,) = writes(sandbox, "stora")
    assert (post.path, post.body) == (
        f"/2025-09/deals/{detail.deal.id}/reopen",
        {"stage": {"id": stage.id}, "assignee": {"id": assignee.value}},
    )


def test_marking_a_stora_deal_lost_sends_the_reason(sales_client, sandbox):
    detail = a_deal("stora")
    reason = detail.actions.lost_reasons[0]
    data = form_fields(text(sales_client.get(url("lose_form", detail), **HTMX)), "lost-form")
    sandbox.clear_log()

    html = text(
        sales_client.post(url("mark_lost", detail), {**data, "reason": reason.value}, **HTMX)
    )

    assert 'class="badge badge-lg badge-lost">Lost</span>' in html
    assert reason.label in html
    (lose,) = writes(sandbox, "stora")
    assert lose.body == {"lost_reason": reason.value}


def test_marking_lost_without_a_reason_keeps_the_form_open_with_a_message(sales_client, sandbox):
    detail = a_deal("stora")
    data = form_fields(text(sales_client.get(url("lose_form", detail), **HTMX)), "lost-form")
    sandbox.clear_log()

    response = sales_client.post(url("mark_lost", detail), data, **HTMX)
    html = text(response)

    assert response.status_code == 422
    assert "Choose why the deal was lost." in html
    assert ">Confirm lost</button>" in html
    assert writes(sandbox, "stora") == []


def test_marking_a_nodestash_deal_lost_moves_it_to_a_lost_stage(sales_client, sandbox):
    detail = a_deal("nodestash")
    lost_stage = detail.actions.lost_stages[-1]
    data = form_fields(text(sales_client.get(url("lose_form", detail), **HTMX)), "lost-form")
    sandbox.clear_log()

    html = text(
        sales_client.post(url("mark_lost", detail), {**data, "reason": lost_stage.id}, **HTMX)
    )

    assert 'class="badge badge-lg badge-lost">Lost</span>' in html
    (patch,) = writes(sandbox, "nodestash")
    assert patch.body == {"stage_id": lost_stage.id}


def test_a_state_change_refused_because_the_deal_changed_shows_the_current_state(
    sales_client, sandbox
):
    detail = a_deal("stora")
    data = state_form(sales_client, detail, url("mark_won", detail))
    sandbox.mutate_deal("stora", detail.deal.id, {"status": "lost", "lost_reason": "other"})
    sandbox.clear_log()

    response = sales_client.post(url("mark_won", detail), data, **HTMX)
    html = text(response)

    assert response.status_code == 409
    assert 'role="alert"' in html
    assert 'class="badge badge-lg badge-lost">Lost</span>' in html
    assert writes(sandbox, "stora") == []


def test_an_outage_during_a_state_change_says_so_in_the_state_region(sales_client, sandbox):
    detail = a_deal("stora")
    data = state_form(sales_client, detail, url("mark_won", detail))
    sandbox.set_outage("stora", True)

    response = sales_client.post(url("mark_won", detail), data, **HTMX)
    html = text(response)

    assert response.status_code == 503
    assert html.lstrip().startswith('<section id="deal-state"')
    assert 'role="alert"' in html and "Stora" in html
    # The region is drawn again from the store: still open, and the user can try again.
    assert '<span id="status-badge" class="badge badge-lg badge-open">Open</span>' in html
    assert f'action="{url("mark_won", detail)}"' in html
    assert writes(sandbox, "stora") == []


def test_state_changes_without_htmx_redirect_to_the_page(sales_client, sandbox):
    detail = a_deal("nodestash")
    data = state_form(sales_client, detail, url("mark_won", detail))

    response = sales_client.post(url("mark_won", detail), data)

    assert response.status_code == 302
    assert response["Location"] == url("detail", detail)
    assert "badge-won" in text(sales_client.get(response["Location"]))


# --- Permissions and CSRF ---------------------------------------------------------------------


def test_viewers_are_refused_every_write_and_nothing_is_sent(viewer_client, sandbox):
    detail = a_deal("stora")
    sandbox.clear_log()
    posts = [
        (url("field_save", detail, "name"), {"name": "Nope", "idempotency_key": "k1"}),
        (url("change_stage", detail), {"stage": "x", "idempotency_key": "k2"}),
        (url("mark_won", detail), {"idempotency_key": "k3"}),
        (url("mark_lost", detail), {"reason": "other", "idempotency_key": "k4"}),
        (url("reopen", detail), {"stage": "x", "idempotency_key": "k5"}),
    ]

    for path, data in posts:
        assert viewer_client.post(path, data, **HTMX).status_code == 403, path

    assert writes(sandbox, "stora") == []
    assert not AuditEntry.objects.exists()


def test_writes_need_post(sales_client):
    detail = a_deal("stora")

    assert sales_client.get(url("mark_won", detail)).status_code == 405
    assert sales_client.get(url("field_save", detail, "name")).status_code == 405


def test_htmx_posts_carry_the_csrf_token_from_the_body_headers(connections, sandbox, sales_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)
    detail = a_deal("nodestash")
    page = text(client.get(url("detail", detail)))
    token = re.search(r'<body hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'>', page).group(1)
    data = edit_form(client, detail, "name")
    data.pop("csrfmiddlewaretoken")  # htmx sends the header; the form's own token is for no-JS

    refused = client.post(url("field_save", detail, "name"), {**data, "name": "X"}, **HTMX)
    accepted = client.post(
        url("field_save", detail, "name"),
        {**data, "name": "With token"},
        HTTP_X_CSRFTOKEN=token,
        **HTMX,
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200


# --- Writes take their expected version from what the user saw ---------------------------------


def edit_button(client: Client, detail, field_name: str) -> dict[str, str]:
    """What the detail page's "Edit <field>" button sends when it opens the inline form."""
    page = text(client.get(url("detail", detail)))
    opens = re.escape(url("field_edit", detail, field_name))
    trigger = re.search(
        rf'<form class="edit-trigger"[^>]*hx-get="{opens}".*?</form>', page, re.S
    ).group(0)
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', trigger)
    return {name: html_lib.unescape(value) for name, value in hidden}


def test_the_edit_form_says_what_changed_since_the_page_loaded_and_saves_against_the_page(
    sales_client, sandbox, resync
):
    detail = a_deal("nodestash")
    shown_on_page = edit_button(sales_client, detail, "name")
    assert shown_on_page["shown"] == detail.deal.name and shown_on_page["seen"]
    sandbox.mutate_deal("nodestash", detail.deal.id, {"title": "Renamed meanwhile"})
    resync()  # the store has the change the page did not show

    opened = sales_client.get(url("field_edit", detail, "name"), shown_on_page, **HTMX)
    html = text(opened)

    assert "Name changed to “Renamed meanwhile” since you loaded this page." in html
    data = form_fields(html, url("field_save", detail, "name"))
    assert data["original"] == detail.deal.name  # the page's version, not this read's
    assert data["seen_updated_at"] == shown_on_page["seen"]
    sandbox.clear_log()

    saved = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "My name"}, **HTMX
    )

    assert saved.status_code == 409
    assert '<span class="conflict-current">Renamed meanwhile</span>' in text(saved)
    assert writes(sandbox, "nodestash") == []


def test_the_edit_form_says_nothing_when_the_field_is_as_the_page_showed(sales_client, sandbox):
    detail = a_deal("nodestash")
    shown_on_page = edit_button(sales_client, detail, "name")

    html = text(sales_client.get(url("field_edit", detail, "name"), shown_on_page, **HTMX))

    assert "since you loaded this page" not in html
    assert form_fields(html, url("field_save", detail, "name"))["original"] == detail.deal.name


def test_a_refused_conflict_keeps_its_message_when_the_next_read_is_refused(
    sales_client, sandbox, monkeypatch
):
    detail = a_deal("nodestash")
    data = edit_form(sales_client, detail, "name")
    sandbox.mutate_deal("nodestash", detail.deal.id, {"title": "Changed elsewhere"})
    simulator = sandbox.simulators["nodestash"]
    sandbox.set_rate_limiting("nodestash", True)
    monkeypatch.setattr(simulator, "burst_limit", 1000)
    # The save's own re-read is the day's last request: the form's read after it is refused.
    monkeypatch.setattr(simulator, "daily_limit", simulator._daily_used + 1)

    response = sales_client.post(
        url("field_save", detail, "name"), {**data, "name": "My new name"}, **HTMX
    )
    html = text(response)

    assert response.status_code == 409
    assert "changed in nodestash since you loaded this deal" in html
    assert "quota" not in html and "rate limiting" not in html
    assert 'value="My new name"' in html


def test_a_new_stora_move_in_date_keeps_the_stored_time_of_day(sales_client, sandbox, resync):
    detail = a_deal("stora")
    sandbox.mutate_deal("stora", detail.deal.id, {"starts_at": "2026-03-01T14:30:00Z"})
    resync()
    data = edit_form(sales_client, detail, "starts_at")
    assert data["original"] == "2026-03-01"
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "starts_at"), {**data, "starts_at": "2026-04-02"}, **HTMX
    )

    assert response.status_code == 200
    (patch,) = writes(sandbox, "stora")
    assert patch.body == {"starts_at": "2026-04-02T14:30:00Z"}  # not midnight UTC
