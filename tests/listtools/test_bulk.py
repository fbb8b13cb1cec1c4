"""Bulk actions over list rows: each row goes through the same service write as a single edit,
with its own outcome; mixed sources or pipelines are refused for stage and lost changes."""

from __future__ import annotations

import dataclasses
import html as html_lib
import re

import pytest
from django.urls import reverse

from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.listtools.bulk import bulk_choices
from dealdesk.sync.store import reference_load, reference_save
from tests.deals.demo_deals import writes

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def bulk_form(client, **filters) -> tuple[str, dict[str, str]]:
    """The list page and what its bulk form holds (the idempotency key and every row state)."""
    html = client.get(reverse("deals:list"), filters).content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(state:[^"]+)" value="([^"]*)"', html))
    fields["idempotency_key"] = re.search(
        r'id="bulk-form".*?name="idempotency_key" value="([^"]+)"', html, re.S
    ).group(1)
    return html, {k: v.replace("&#x27;", "'").replace("&amp;", "&") for k, v in fields.items()}


def post_bulk(client, fields, keys, **data):
    return client.post(reverse("deals:bulk"), {**fields, "deal": keys, **data}, **HTMX)


def test_rows_have_labelled_checkboxes_and_the_action_bar(sales_client):
    html, _ = bulk_form(sales_client)
    assert re.search(r'<label for="select-1" class="visually-hidden">Select [^<]+</label>', html)
    for label in ("Bulk action", "New stage", "Lost reason"):
        assert f">{label}</label>" in html
    assert "Apply to selected" in html


def test_bulk_stage_change_over_mixed_results_reports_each_row(sales_client, sandbox):
    deals = deal_list(filters=DealFilters(source="stora", status="open"), page_size=3).deals
    _html, fields = bulk_form(sales_client, source="stora", status="open")
    target = "dstg_1316672df59ac4f0"  # "Contacted" in the demo seed
    elsewhere = "dstg_e33d9a72428aeebd"  # "Quote sent"
    changed = next(d for d in deals if d.stage and d.stage.id not in (target, elsewhere))
    sandbox.mutate_deal("stora", changed.id, {"stage": {"id": elsewhere}})
    sandbox.clear_log()

    response = post_bulk(
        sales_client,
        fields,
        [d.key for d in deals],
        action="change_stage",
        bulk_stage=f"stora:stora:{target}",
    )

    html = response.content.decode()
    assert response.status_code == 200
    items = re.findall(r'<li class="bulk-(saved|failed)"><a href="[^"]+">([^<]+)</a>', html)
    assert len(items) == 3
    assert ("failed", changed.name) in items
    assert "changed in Stora since you loaded this deal" in html
    assert [kind for kind, _ in items].count("saved") == 2
    assert 'role="alert"' in html and "1 failed" in html
    sent = writes(sandbox, "stora")
    assert {r.path for r in sent} == {
        f"/2025-09/deals/{d.id}" for d in deals if d.id != changed.id and d.stage.id != target
    }
    assert all(r.body == {"stage": {"id": target}} for r in sent)
    outcomes = sorted(AuditEntry.objects.values_list("outcome", flat=True))
    assert outcomes == ["conflict", "succeeded", "succeeded"]


def test_bulk_stage_change_refuses_a_selection_over_two_sources(sales_client, sandbox):
    _html, fields = bulk_form(sales_client)
    keys = [k.removeprefix("state:") for k in fields if k.startswith("state:")]
    mixed = [
        next(k for k in keys if k.startswith("stora:")),
        next(k for k in keys if k.startswith("nodestash:")),
    ]
    sandbox.clear_log()

    response = post_bulk(
        sales_client, fields, mixed, action="change_stage", bulk_stage="stora:stora:dstg_x"
    )

    assert response.status_code == 422
    assert "one source and pipeline" in response.content.decode()
    assert writes(sandbox, "stora") == writes(sandbox, "nodestash") == []


def test_bulk_mark_lost_sends_the_reason_for_each_row(sales_client, sandbox):
    deals = deal_list(filters=DealFilters(source="stora", status="open"), page_size=2).deals
    _html, fields = bulk_form(sales_client, source="stora", status="open")
    sandbox.clear_log()

    post_bulk(
        sales_client,
        fields,
        [d.key for d in deals],
        action="mark_lost",
        bulk_reason="stora:stora:chose_competitor",
    )

    assert [(r.path, r.body) for r in writes(sandbox, "stora")] == [
        (f"/2025-09/deals/{d.id}/lose", {"lost_reason": "chose_competitor"}) for d in deals
    ]


def test_bulk_reopen_works_across_sources_and_a_double_submit_acts_once(sales_client, sandbox):
    lost = deal_list(filters=DealFilters(status="lost"), page_size=50).deals
    picked = [next(d for d in lost if d.connection_slug == s) for s in ("stora", "nodestash")]
    _html, fields = bulk_form(sales_client, status="lost")
    sandbox.clear_log()

    first = post_bulk(sales_client, fields, [d.key for d in picked], action="reopen")
    again = post_bulk(sales_client, fields, [d.key for d in picked], action="reopen")

    assert first.content.decode().count("<strong>Saved</strong>") == 2
    assert again.content.decode().count("<strong>Saved</strong>") == 2
    assert len(writes(sandbox, "stora")) == 1 and len(writes(sandbox, "nodestash")) == 1


def test_viewers_cannot_run_bulk_actions(viewer_client):
    assert viewer_client.post(reverse("deals:bulk"), {"action": "reopen"}).status_code == 403
    assert "Apply to selected" not in viewer_client.get(reverse("deals:list")).content.decode()


def test_bulk_stage_change_on_a_closed_stora_deal_is_refused_not_reopened(sales_client, sandbox):
    (won,) = deal_list(filters=DealFilters(source="stora", status="won"), page_size=1).deals
    _html, fields = bulk_form(sales_client, source="stora", status="won")
    target = next(s for s in won.pipeline.ordered_stages() if s.id != won.stage.id)
    sandbox.clear_log()

    response = post_bulk(
        sales_client,
        fields,
        [won.key],
        action="change_stage",
        bulk_stage=f"stora:stora:{target.id}",
    )

    html = response.content.decode()
    assert "its stage changes only when it is reopened" in html and "1 failed" in html
    assert writes(sandbox, "stora") == []  # no silent POST /reopen
    assert sandbox.simulators["stora"].deals[won.id]["status"] == "won"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome) == ("change_stage", "conflict")


@pytest.mark.parametrize(
    "key, words",
    [
        ("stora:a/b", "is not a Stora deal id"),
        ("stora:../staff", "is not a Stora deal id"),
        ("stora:dl_0123abcd", "is not a Stora deal id"),
        ("nodestash:deal_0123abcd", "is not a nodestash deal id"),
        ("nodestash:dl_x?include=all", "is not a nodestash deal id"),
        ("bad slug!:deal_0123abcd", "is not a source DealDesk knows"),
        (":deal_0123abcd", "is not a source DealDesk knows"),
        ("stora:", "is not a Stora deal id"),
    ],
)
@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_a_crafted_row_is_a_400_with_a_message_and_sends_nothing(
    sales_client, sandbox, key, words, htmx
):
    _html, fields = bulk_form(sales_client)
    sandbox.clear_log()

    response = sales_client.post(
        reverse("deals:bulk"),
        {**fields, "deal": [key], "action": "reopen"},
        **(HTMX if htmx else {}),
    )

    assert response.status_code == 400
    assert words in html_lib.unescape(response.content.decode())
    assert sandbox.requests() == []


def test_the_bulk_stage_choices_follow_a_renamed_stage(connections):
    def stora_stage_names() -> list[str]:
        choices = bulk_choices(deal_list(filters=DealFilters()))
        group = next(g for g in choices.stage_groups if g.label.startswith("Stora"))
        return [choice.label for choice in group.choices]

    before = stora_stage_names()
    assert stora_stage_names() == before  # built once, then the same
    ref = reference_load(connections["stora"])
    pipeline = ref.pipelines[0]
    renamed = dataclasses.replace(pipeline.stages[0], name="Renamed by the vendor")
    pipelines = (dataclasses.replace(pipeline, stages=(renamed, *pipeline.stages[1:])),)

    reference_save(connections["stora"], dataclasses.replace(ref, pipelines=pipelines))

    after = stora_stage_names()
    assert "Renamed by the vendor" in after and after != before
