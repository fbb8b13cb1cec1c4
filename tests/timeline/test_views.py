"""The deal timeline through Django's test client against the sandbox: what the page shows for
each source, Add note / Add task / Mark done (Sales only), the exact requests nodestash
received, the store and the audit trail after each, and the errors per field."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import DealFilters, deal_list, deal_refresh
from dealdesk.sync.models import SyncedActivity, SyncedDeal
from tests.deals.demo_deals import a_deal, url, writes

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Several reads per test: the per-second budgets are not under test here."""


def html_of(response) -> str:
    return response.content.decode()


def timeline_url(name: str, detail, *extra: str) -> str:
    return reverse(f"timeline:{name}", args=[detail.connection.slug, detail.deal.id, *extra])


def open_nodestash_deal(where=lambda row: True):
    """An open nodestash deal of the demo seed whose stored row matches ``where``."""
    return a_deal(
        "nodestash",
        where=lambda d: where(SyncedDeal.objects.get(upstream_id=d.deal.id)),
    )


def an_open_task(detail) -> SyncedActivity:
    return (
        SyncedActivity.objects.filter(deal_id=detail.deal.id, is_done=False, deleted=False)
        .exclude(kind="note")
        .first()
    )


# --- What the page shows ---------------------------------------------------------------------


def test_a_nodestash_deal_shows_its_activities_newest_first_with_the_audit_interleaved(
    sales_client,
):
    detail = open_nodestash_deal(
        lambda row: SyncedActivity.objects.filter(deal_id=row.upstream_id).count() >= 2
    )
    subjects = list(
        SyncedActivity.objects.filter(deal_id=detail.deal.id)
        .order_by("-upstream_created_at")
        .values_list("subject", flat=True)
    )
    sales_client.post(
        url("field_save", detail, "name"),
        {"name": "Renamed for the timeline", "idempotency_key": "rename-1"},
        **HTMX,
    )

    html = html_of(sales_client.get(url("detail", detail)))

    history = html[html.index('id="history"') :]
    shown = re.findall(r'<div class="activity-subject">([^<]*)</div>', history)
    assert shown == subjects
    # The rename just now is newer than every seeded activity: it comes first.
    assert history.index("Renamed for the timeline") < history.index(subjects[0])
    assert 'id="timeline-add"' in html and "Add note" in html and "Add task" in html


def test_a_stora_deal_shows_its_note_and_says_why_there_is_nothing_more(sales_client, sandbox):
    simulator = sandbox.simulators["stora"]
    detail = a_deal("stora", where=lambda d: simulator.deals[d.deal.id].get("note"))
    deal_refresh(connection_slug="stora", deal_id=detail.deal.id)  # lists leave the note out

    html = html_of(sales_client.get(url("detail", detail)))

    assert "Stora's API offers no notes or tasks" in html
    assert '<div class="timeline-note"><h3>Note</h3>' in html
    assert 'id="timeline-add"' not in html
    assert "No changes made through DealDesk yet." in html


def test_a_viewer_sees_the_timeline_but_no_forms_or_mark_done(viewer_client):
    detail = open_nodestash_deal(lambda row: row.next_step_state == "planned")

    html = html_of(viewer_client.get(url("detail", detail)))

    assert 'id="timeline-add"' in html and 'class="activity-subject"' in html
    assert 'id="note-form"' not in html and "Mark done" not in html


# --- Add note ------------------------------------------------------------------------------


def test_add_note_posts_it_upstream_stores_it_and_audits_it(sales_client, sandbox):
    detail = open_nodestash_deal()

    response = sales_client.post(
        timeline_url("add_note", detail),
        {"subject": "Spoke to finance", "body": "They sign on Friday.", "idempotency_key": "n-1"},
        **HTMX,
    )

    html = html_of(response)
    assert response.status_code == 200
    assert 'id="timeline-add"' in html and "Note added." in html
    assert 'id="history"' in html and 'hx-swap-oob="true"' in html
    assert "Spoke to finance" in html
    (sent,) = writes(sandbox, "nodestash")
    assert (sent.method, sent.path) == ("POST", "/v1/activities")
    assert sent.body == {
        "type": "note",
        "subject": "Spoke to finance",
        "deal_id": detail.deal.id,
        "body": "They sign on Friday.",
    }
    assert sent.headers["idempotency-key"] == "n-1"
    stored = SyncedActivity.objects.get(deal_id=detail.deal.id, subject="Spoke to finance")
    assert stored.kind == "note" and stored.body == "They sign on Friday."
    entry = AuditEntry.objects.get(deal_id=detail.deal.id, action="add_note")
    assert entry.outcome == "succeeded" and entry.changes[0]["new"] == "Spoke to finance"


def test_a_double_submit_adds_one_note(sales_client, sandbox):
    detail = open_nodestash_deal()
    form = {"subject": "Only once", "body": "", "idempotency_key": "n-twice"}

    sales_client.post(timeline_url("add_note", detail), form, **HTMX)
    sales_client.post(timeline_url("add_note", detail), form, **HTMX)

    assert len(writes(sandbox, "nodestash")) == 1
    assert SyncedActivity.objects.filter(subject="Only once").count() == 1


def test_a_note_without_subject_is_refused_on_its_field_and_keeps_what_was_typed(
    sales_client, sandbox
):
    detail = open_nodestash_deal()

    response = sales_client.post(
        timeline_url("add_note", detail),
        {"subject": "  ", "body": "Typed details", "idempotency_key": "n-empty"},
        **HTMX,
    )

    html = html_of(response)
    assert response.status_code == 400
    assert 'id="note-subject-error"' in html and "Enter a subject for the note." in html
    assert 'aria-invalid="true" aria-describedby="note-subject-error"' in html
    assert ">Typed details</textarea>" in html
    assert writes(sandbox, "nodestash") == []


def test_a_refusal_from_nodestash_shows_next_to_its_field(sales_client, sandbox):
    detail = open_nodestash_deal()
    sandbox.fail_next(
        "nodestash",
        1,
        400,
        {
            "error": {
                "code": "VALIDATION_ERROR",
                "message": "Request validation failed",
                "details": [{"field": "subject", "message": "Subject is not allowed"}],
            }
        },
        method="POST",
    )

    response = sales_client.post(
        timeline_url("add_note", detail),
        {"subject": "Refused one", "body": "", "idempotency_key": "n-refused"},
        **HTMX,
    )

    html = html_of(response)
    assert response.status_code == 400
    assert "Subject is not allowed" in html and 'value="Refused one"' in html
    entry = AuditEntry.objects.get(deal_id=detail.deal.id, action="add_note")
    assert entry.outcome == "failed"


def test_nodestash_down_says_so_above_the_forms_and_keeps_the_text(sales_client, sandbox):
    detail = open_nodestash_deal()
    sandbox.fail_next("nodestash", 1, 503, {"error": {"code": "INTERNAL_ERROR"}}, method="POST")

    response = sales_client.post(
        timeline_url("add_note", detail),
        {"subject": "While it was down", "body": "", "idempotency_key": "n-down"},
        **HTMX,
    )

    html = html_of(response)
    assert response.status_code == 503
    assert 'class="alert alert-error" role="alert"' in html and "unavailable" in html
    assert 'value="While it was down"' in html


def test_without_htmx_add_note_redirects_to_the_deal_with_a_message(sales_client):
    detail = open_nodestash_deal()

    response = sales_client.post(
        timeline_url("add_note", detail),
        {"subject": "Plain form", "body": "", "idempotency_key": "n-plain"},
        follow=True,
    )

    html = html_of(response)
    assert response.redirect_chain[0][0].startswith(url("detail", detail))
    assert "Note added." in html and "Plain form" in html


def test_a_viewer_cannot_add_a_note(viewer_client, sandbox):
    detail = open_nodestash_deal()

    response = viewer_client.post(
        timeline_url("add_note", detail),
        {"subject": "Not allowed", "body": "", "idempotency_key": "n-viewer"},
        **HTMX,
    )

    assert response.status_code == 403
    assert writes(sandbox, "nodestash") == []


def test_a_stora_deal_takes_no_note_and_nothing_is_sent(sales_client, sandbox):
    detail = a_deal("stora")

    response = sales_client.post(
        timeline_url("add_note", detail),
        {"subject": "Nowhere to go", "body": "", "idempotency_key": "n-stora"},
        **HTMX,
    )

    assert response.status_code == 404
    assert writes(sandbox, "stora") == [] and writes(sandbox, "nodestash") == []
    entry = AuditEntry.objects.get(deal_id=detail.deal.id, action="add_note")
    assert entry.outcome == "failed" and "keeps no notes or tasks" in entry.error_message


# --- Add task and Mark done ------------------------------------------------------------------


def test_add_task_gives_a_deal_without_next_step_one_at_once(sales_client, sandbox):
    detail = open_nodestash_deal(lambda row: row.next_step_state == "none")
    due = timezone.localdate() + dt.timedelta(days=2)
    filters = DealFilters(source="nodestash", no_next_step=True)
    before = deal_list(filters=filters, page_size=100)  # the list's figures and ids, cached
    assert detail.deal.id in {d.id for d in before.deals}

    response = sales_client.post(
        timeline_url("add_task", detail),
        {"subject": "Send the quote", "due_date": due.isoformat(), "idempotency_key": "t-1"},
        **HTMX,
    )

    assert response.status_code == 200 and "Task added." in html_of(response)
    (sent,) = writes(sandbox, "nodestash")
    assert sent.body == {
        "type": "task",
        "subject": "Send the quote",
        "deal_id": detail.deal.id,
        "due_date": due.isoformat(),
    }
    row = SyncedDeal.objects.get(upstream_id=detail.deal.id)
    assert (row.next_step_state, row.next_step_due, row.next_step_subject) == (
        "planned",
        due,
        "Send the quote",
    )
    listed = deal_list(filters=filters, page_size=100)
    assert detail.deal.id not in {d.id for d in listed.deals}
    assert listed.total_count == before.total_count - 1


def test_a_task_without_due_date_is_refused_on_that_field(sales_client, sandbox):
    detail = open_nodestash_deal()

    response = sales_client.post(
        timeline_url("add_task", detail),
        {"subject": "When though", "due_date": "", "idempotency_key": "t-nodate"},
        **HTMX,
    )

    html = html_of(response)
    assert response.status_code == 400
    assert 'id="task-due_date-error"' in html and "Enter the date it is due." in html
    assert 'value="When though"' in html
    assert writes(sandbox, "nodestash") == []


def test_mark_done_patches_the_task_and_recomputes_the_next_step(sales_client, sandbox):
    detail = open_nodestash_deal(lambda row: row.next_step_state == "planned")
    steps = SyncedActivity.objects.filter(
        deal_id=detail.deal.id, is_done=False, deleted=False
    ).exclude(kind="note")
    task = steps.first()

    response = sales_client.post(
        timeline_url("complete", detail, task.upstream_id), {"idempotency_key": "d-1"}, **HTMX
    )

    html = html_of(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="history"') and "Marked done." in html
    assert '<p id="timeline-next-step" class="next-step-line" hx-swap-oob="true">' in html
    (sent,) = writes(sandbox, "nodestash")
    assert (sent.method, sent.path, sent.body) == (
        "PATCH",
        f"/v1/activities/{task.upstream_id}",
        {"is_done": True},
    )
    assert sent.headers["idempotency-key"] == "d-1"
    task.refresh_from_db()
    assert task.is_done
    row = SyncedDeal.objects.get(upstream_id=detail.deal.id)
    expected = "planned" if steps.exists() else "none"
    assert row.next_step_state == expected
    entry = AuditEntry.objects.get(deal_id=detail.deal.id, action="complete_task")
    assert entry.outcome == "succeeded"


def test_mark_done_of_a_task_of_another_deal_is_refused_and_sends_nothing(sales_client, sandbox):
    detail = open_nodestash_deal(lambda row: row.next_step_state == "none")
    foreign = SyncedActivity.objects.exclude(deal_id=detail.deal.id).filter(is_done=False).first()

    response = sales_client.post(
        timeline_url("complete", detail, foreign.upstream_id), {"idempotency_key": "d-x"}, **HTMX
    )

    assert response.status_code == 409
    assert "not on this deal" in html_of(response)
    assert writes(sandbox, "nodestash") == []


# --- The list and the board ------------------------------------------------------------------


def test_list_rows_show_the_next_step_in_words(sales_client):
    html = html_of(sales_client.get("/deals/?source=nodestash&status=open"))

    for words in ("Overdue: ", "Due today: ", "Planned: ", "No next step"):
        assert words in html
    assert 'class="next-step next-step-overdue"' in html


def test_the_no_next_step_filter_keeps_only_open_deals_without_one(sales_client):
    response = sales_client.get("/deals/?no_next_step=1", **HTMX)

    html = html_of(response)
    names = re.findall(r'<td class="cell-name" data-label="Name"><a [^>]*>([^<]*)</a>', html)
    expected = SyncedDeal.objects.filter(
        deleted=False, status="open", next_step_state="none"
    ).count()
    assert expected > 0
    assert f"of {expected}" in html
    assert len(names) == min(expected, 25)
    assert html.count("No next step</span>") == len(names)
    assert "Overdue: " not in html and "Planned: " not in html


def test_board_cards_show_the_next_step(sales_client):
    row = SyncedDeal.objects.filter(
        connection__slug="nodestash", status="open", next_step_state="none"
    ).first()

    html = html_of(sales_client.get(f"/board/?pipeline=nodestash:{row.pipeline_id}"))

    card = html[html.index(f'data-deal-key="nodestash:{row.upstream_id}"') :]
    card = card[: card.index("</article>")]
    assert 'class="next-step next-step-none"' in card and "No next step" in card


def test_without_a_readable_deal_the_history_still_lists_the_audit_entries(sales_user):
    """A failed save whose deal cannot be read again refreshes History from the audit alone."""
    entry = AuditEntry.objects.create(
        username="sales",
        connection_slug="nodestash",
        connection_label="nodestash",
        deal_id="dl_x",
        action="update",
        changes=[{"field": "name", "label": "Name", "old": "A", "new": "B"}],
        outcome="failed",
        error_message="nodestash is unavailable right now.",
    )

    html = render_to_string("timeline/entries.html", {"history": [entry]})

    assert 'class="history-entry outcome-failed"' in html
    assert "nodestash is unavailable right now." in html
    assert "offers no notes or tasks" not in html


def test_the_no_next_step_filter_never_reads_the_plain_lists_cached_figures(sales_client):
    plain = deal_list(filters=DealFilters(status="open"))  # cached under the store's version
    filtered = deal_list(filters=DealFilters(status="open", no_next_step=True))

    expected = SyncedDeal.objects.filter(
        deleted=False, status="open", next_step_state="none"
    ).count()
    assert filtered.total_count == expected < plain.total_count
    assert {d.id for d in filtered.deals} <= set(
        SyncedDeal.objects.filter(next_step_state="none").values_list("upstream_id", flat=True)
    )
