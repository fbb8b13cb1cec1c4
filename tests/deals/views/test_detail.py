"""The deal detail page and its read-only partials, through Django's test client against the
sandbox: what is shown, who sees edit controls, and the error pages upstream failures give."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from tests.deals.demo_deals import a_deal, url

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Each test reads several deals: the per-second budgets are not under test here."""


def html_of(response) -> str:
    return response.content.decode()


# --- What the page shows ---------------------------------------------------------------------


def test_stora_detail_shows_names_not_ids_line_items_and_times(sales_client):
    detail = a_deal("stora", where=lambda d: d.deal.line_items and d.deal.contact and d.deal.owner)
    deal = detail.deal

    response = sales_client.get(url("detail", detail))
    html = html_of(response)

    assert response.status_code == 200
    assert re.search(r'<h1 id="deal-title">[^<]+</h1>', html)
    assert '<span id="status-badge" class="badge badge-lg badge-open">Open</span>' in html
    assert f"<dd>{deal.contact.name}" in html
    assert deal.owner.name in html
    if deal.site:
        assert f"<dd>{deal.site.name}" in html
    assert "<h3>Line items</h3>" in html
    assert "<dt>Created</dt>" in html and "<dt>Updated</dt>" in html
    assert "<span>Stora</span>" in html  # the source, in the subtitle (not a repeated row)
    assert "Stora · Stora" not in html  # Stora's one pipeline is named after it: said once


def test_nodestash_detail_shows_tags_custom_fields_pipeline_and_company(sales_client):
    detail = a_deal("nodestash", where=lambda d: d.deal.tags and d.deal.custom_fields)
    deal = detail.deal

    html = html_of(sales_client.get(url("detail", detail)))

    assert f'<li class="tag">{deal.tags[0]}</li>' in html
    assert "<h3>Custom fields</h3>" in html
    assert f"<span>nodestash · {deal.pipeline.name}</span>" in html  # in the subtitle
    if deal.company:
        assert f"<dd>{deal.company.name}" in html


def test_a_lost_deal_shows_its_badge_and_lost_reason(sales_client):
    detail = a_deal("stora", "lost", where=lambda d: d.deal.lost_reason)

    html = html_of(sales_client.get(url("detail", detail)))

    assert 'class="badge badge-lg badge-lost">Lost</span>' in html
    assert f"Lost reason</span> <strong>{detail.deal.lost_reason_label}</strong>" in html
    assert html.count(detail.deal.lost_reason_label) == 1  # said once, next to the badge
    assert ">Reopen</button>" in html
    assert "Mark won" not in html


def test_html_in_a_deal_name_is_escaped_on_the_detail_page(sales_client):
    detail = a_deal("stora", where=lambda d: "<script>" in d.deal.name)

    html = html_of(sales_client.get(url("detail", detail)))

    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<script>alert("x")' not in html


def test_back_link_returns_to_the_list_with_its_filters(sales_client):
    detail = a_deal("nodestash")

    html = html_of(
        sales_client.get(url("detail", detail), {"from": "status=open&source=nodestash"})
    )

    assert '<a href="/deals/?status=open&amp;source=nodestash">← Back to deals</a>' in html


def test_back_link_drops_anything_that_is_not_a_list_filter(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("detail", detail), {"from": "next=//evil.example&q=a"}))

    assert '<a href="/deals/?q=a">← Back to deals</a>' in html


def test_sales_see_edit_buttons_stage_control_and_outcome_buttons(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("detail", detail)))

    for name, label in (
        ("name", "Name"),
        ("value", "Value"),
        ("tags", "Tags"),
        ("expected_close_date", "Expected close date"),
    ):
        assert f">Edit {label}</button>" in html
        assert f'id="field-{name}"' in html
    assert '<form id="stage-control"' in html
    # One stage control: a button per other stage, then Won and Lost at its end.
    steps = re.findall(r'<button type="submit" form="stage-control" name="stage"', html)
    assert len(steps) == len(detail.actions.stage_choices) - 1
    assert 'aria-current="step"' in html
    assert '<span class="visually-hidden">Mark </span>Won</button>' in html
    assert '<span class="visually-hidden">Mark </span>Lost</button>' in html


def test_stora_fields_are_name_note_move_in_date_and_assignee(sales_client):
    detail = a_deal("stora")

    html = html_of(sales_client.get(url("detail", detail)))

    for label in ("Name", "Note", "Move-in date", "Assignee"):
        assert f">Edit {label}</button>" in html


def test_stage_select_lists_the_allowed_stages_in_pipeline_order(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("detail", detail)))

    bar = re.search(r'<ol class="stage-steps".*?</ol>', html, re.S).group(0)
    names = re.findall(
        r'(?:<span class="visually-hidden">(?:Move to|Mark) </span>|<span class="step-label"[^>]*>)'
        r"([^<]+)",
        bar,
    )
    assert names == [stage.name for stage in detail.actions.stage_choices] + ["Won", "Lost"]


def test_edit_buttons_work_without_javascript_through_a_get_form(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("detail", detail)))

    trigger = re.search(
        r'<form class="edit-trigger"[^>]*hx-get="([^"]+)"[^>]*>'
        r'\s*<input type="hidden" name="edit" value="name">',
        html,
    )
    assert trigger
    assert trigger.group(1) == url("field_edit", detail, "name")


def test_viewers_see_no_edit_controls(viewer_client):
    detail = a_deal("stora")

    response = viewer_client.get(url("detail", detail))
    html = html_of(response)

    assert response.status_code == 200
    assert "Edit Name" not in html
    assert "stage-control" not in html
    assert "Mark won" not in html and "Mark lost" not in html
    assert 'method="post"' not in html.split("<main")[1]


def test_viewers_see_no_reopen_button_on_a_closed_deal(viewer_client):
    detail = a_deal("nodestash", "won")

    html = html_of(viewer_client.get(url("detail", detail)))

    assert ">Reopen</button>" not in html


def test_history_section_lists_nothing_yet(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("detail", detail)))

    assert '<h2 id="history-heading">History</h2>' in html
    assert "No changes made through DealDesk yet." in html


# --- Edit mode and partials -----------------------------------------------------------------


def test_edit_fallback_renders_the_page_with_that_field_in_edit_mode(sales_client):
    detail = a_deal("nodestash", where=lambda d: d.deal.value)

    html = html_of(sales_client.get(url("detail", detail), {"edit": "value"}))

    block = re.search(
        r'<div class="field is-editing" id="field-value">.*?</form>', html, re.S
    ).group(0)
    assert '<label for="id_value_value">Value</label>' in block
    assert 'type="number"' in block and 'step="0.01"' in block
    assert f'name="original" value="{detail.deal.value.amount}"' in block
    assert f'name="seen_updated_at" value="{detail.deal.updated_at.isoformat()}"' in block
    assert re.search(r'name="idempotency_key" value="[0-9a-f]{32}"', block)
    assert ">Save</button>" in block and ">Cancel</button>" in block
    assert "Edit Name" in html  # the other fields stay in display mode


def test_field_edit_partial_is_just_the_form_for_htmx(sales_client):
    detail = a_deal("stora")

    response = sales_client.get(url("field_edit", detail, "note"), **HTMX)
    html = html_of(response)

    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="field is-editing" id="field-note">')
    assert "<textarea" in html
    assert '<label for="id_note_note">Note</label>' in html
    assert f'hx-post="{url("field_save", detail, "note")}"' in html


def test_field_edit_of_the_assignee_is_a_select_of_staff(sales_client):
    detail = a_deal("stora")
    assignee = next(f for f in detail.fields if f.name == "assignee")

    html = html_of(sales_client.get(url("field_edit", detail, "assignee"), **HTMX))

    assert '<select name="assignee"' in html
    for choice in assignee.choices:
        assert f">{escape(choice.label)}</option>" in html


def test_field_edit_without_htmx_redirects_to_the_page_in_edit_mode(sales_client):
    detail = a_deal("stora")

    response = sales_client.get(url("field_edit", detail, "name"))

    assert response.status_code == 302
    assert response["Location"] == url("detail", detail) + "?edit=name"


def test_field_display_partial_shows_the_value_and_the_edit_button(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("field_display", detail, "name"), **HTMX))

    assert html.lstrip().startswith('<div class="field" id="field-name">')
    assert ">Edit Name</button>" in html


def test_unknown_field_is_a_404(sales_client):
    detail = a_deal("nodestash")

    assert sales_client.get(url("field_edit", detail, "owner_id"), **HTMX).status_code == 404


def test_viewer_asking_for_an_edit_form_is_refused(viewer_client):
    detail = a_deal("stora")

    for name, args in (("field_edit", ("name",)), ("lose_form", ()), ("reopen_form", ())):
        assert viewer_client.get(url(name, detail, *args), **HTMX).status_code == 403, name


def test_lose_form_for_stora_asks_for_the_lost_reason(sales_client):
    detail = a_deal("stora")

    response = sales_client.get(url("lose_form", detail), **HTMX)
    html = html_of(response)

    assert html.lstrip().startswith('<section id="deal-state"')
    assert '<label for="lost-reason">Lost reason</label>' in html
    for reason in detail.actions.lost_reasons:
        assert f'<option value="{reason.value}">{reason.label}</option>' in html
    assert ">Confirm lost</button>" in html


def test_lose_form_for_nodestash_asks_for_the_lost_stage_only_when_there_are_several(
    sales_client,
):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("lose_form", detail), **HTMX))

    if len(detail.actions.lost_stages) > 1:
        assert '<label for="lost-stage">Lost stage</label>' in html
    else:
        stage = detail.actions.lost_stages[0]
        assert f'<input type="hidden" name="reason" value="{stage.id}">' in html
        assert "Lost stage" not in html
    assert ">Confirm lost</button>" in html


def test_lose_form_without_htmx_redirects_to_the_page_with_it_open(sales_client):
    detail = a_deal("stora")

    response = sales_client.get(url("lose_form", detail))
    page = html_of(sales_client.get(response["Location"]))

    assert response["Location"] == url("detail", detail) + "?action=lose"
    assert '<label for="lost-reason">Lost reason</label>' in page


def test_reopen_form_for_stora_asks_for_stage_and_assignee(sales_client):
    detail = a_deal("stora", "lost")

    html = html_of(sales_client.get(url("reopen_form", detail), **HTMX))

    assert '<label for="reopen-stage">Stage</label>' in html
    assert '<label for="reopen-assignee">Assignee</label>' in html
    for stage in detail.actions.reopen_stages:
        assert f">{stage.name}</option>" in html
    assert ">Reopen deal</button>" in html


def test_reopen_form_for_nodestash_asks_only_for_the_stage(sales_client):
    detail = a_deal("nodestash", "won")

    html = html_of(sales_client.get(url("reopen_form", detail), **HTMX))

    assert '<label for="reopen-stage">Stage</label>' in html
    assert "Assignee" not in html


def test_state_partial_is_the_state_region_for_cancel(sales_client):
    detail = a_deal("nodestash")

    html = html_of(sales_client.get(url("state", detail), **HTMX))

    assert html.lstrip().startswith('<section id="deal-state"')
    assert '<span class="visually-hidden">Mark </span>Lost</button>' in html


# --- Not found and upstream failures ----------------------------------------------------------


def test_an_unknown_deal_id_is_a_friendly_404(sales_client):
    response = sales_client.get("/deals/nodestash/dl_doesnotexist/")
    html = html_of(response)

    assert response.status_code == 404
    assert "We couldn’t find that" in html
    assert '<a class="button primary" href="/deals/">Go to Deals</a>' in html


def test_an_unknown_connection_is_a_404(sales_client):
    assert sales_client.get("/deals/nope/deal_1/").status_code == 404


def test_an_outage_leaves_the_page_served_from_the_store_and_refresh_says_so_not_a_500(
    sales_client, sandbox
):
    detail = a_deal("stora")
    sandbox.set_outage("stora", True)
    sandbox.clear_log()

    page = sales_client.get(url("detail", detail))

    assert page.status_code == 200
    assert escape(detail.deal.name) in html_of(page)
    assert sandbox.requests("stora") == []
    # The Refresh button is the way to try the source again.
    assert f'action="{url("refresh", detail)}"' in html_of(page)

    response = sales_client.post(url("refresh", detail), follow=True)
    html = html_of(response)

    assert response.status_code == 200
    alert = re.search(r'role="alert">(.*?)</p>', html, re.S).group(1)
    assert "Stora" in alert and "Try again" in alert
    assert escape(detail.deal.name) in html  # the stored deal still shows


def test_a_rate_limited_refresh_says_when_to_try_again(sales_client, sandbox):
    detail = a_deal("nodestash")
    sandbox.fail_next(
        "nodestash",
        5,
        429,
        body={"error": {"code": "RATE_LIMITED", "message": "Slow down", "retry_after": 3}},
        headers={"Retry-After": "3"},
    )

    response = sales_client.post(url("refresh", detail), follow=True)

    assert response.status_code == 200
    assert "try again in 3 s" in html_of(response)
    assert "Refreshed" not in html_of(response)


def test_a_rejected_key_on_detail_links_staff_to_the_connection_admin(
    staff_client, connections, sandbox
):
    from dealdesk.sync.engine import sync_run

    detail = a_deal("nodestash")
    connection = connections["nodestash"]
    # The key is revoked upstream (a new key would be another account, whose store starts
    # afresh): the next sync is refused.
    sandbox.fail_next(
        "nodestash", 5, 401, {"error": {"code": "INVALID_API_KEY", "message": "Invalid API key."}}
    )
    assert sync_run(connection).error

    response = staff_client.get(url("detail", detail))
    html = html_of(response)

    admin_url = reverse("admin:connections_connection_change", args=[connection.pk])
    assert response.status_code == 200  # the stored deal still shows
    assert escape(detail.deal.name) in html
    assert "Showing nodestash deals as of " in html
    assert "An admin must update it." in html
    assert f'<a href="{admin_url}">Update the nodestash connection</a>' in html


def test_an_outage_does_not_stop_an_edit_form_from_opening(sales_client, sandbox):
    detail = a_deal("stora")
    sandbox.set_outage("stora", True)
    sandbox.clear_log()

    response = sales_client.get(url("field_edit", detail, "name"), **HTMX)
    html = html_of(response)

    assert response.status_code == 200
    assert html.lstrip().startswith('<div class="field is-editing" id="field-name">')
    assert 'name="name"' in html
    assert 'role="alert"' not in html
    assert sandbox.requests("stora") == []


def test_the_500_page_renders_on_its_own_with_a_link_to_deals():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")

    assert "Something went wrong on our side" in html
    assert '<a class="button primary" href="/deals/">Go to Deals</a>' in html
