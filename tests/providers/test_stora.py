"""The Stora adapter against the sandbox over real HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest

from dealdesk.providers.base import (
    AuthenticationFailed,
    Conflict,
    DealQuery,
    Forbidden,
    NotFound,
    RateLimited,
    Ref,
    ReferenceData,
    Unavailable,
    ValidationFailed,
)
from dealdesk.providers.http import key_fingerprint
from dealdesk.providers.stora import (
    S_A3_EXPAND,
    S_A7_LOST_REASONS,
    StoraAdapter,
    page_for_window,
)
from dealdesk.sandbox.seed_stora import API_APPLICATION_ID, DELETED_STAGE_NAME, HTML_DEAL_NAME
from tests.providers.conftest import example


@pytest.fixture
def adapter(stora_info, sandbox, settings) -> StoraAdapter:
    """Both rate limits out of the way; the rate tests switch them back on."""
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    sandbox.set_rate_limiting("stora", False)
    return StoraAdapter(stora_info)


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["stora"]


def raw_deal(simulator, *, status: str = "open", named: str | None = None) -> dict:
    return next(
        d
        for d in simulator.deals.values()
        if (named is None or d["name"] == named)
        and d["status"] == status
        and "id" in d["stage"]
        and d["assignee"]
    )


def only_request(sandbox):
    (record,) = sandbox.requests("stora")
    return record


def upstream_order(simulator) -> list[str]:
    """Deal ids in the order ``sort_by=updated_at&sort_direction=DESC`` returns them."""
    rows = sorted(simulator.deals.values(), key=lambda d: (d["updated_at"], d["id"]), reverse=True)
    return [d["id"] for d in rows]


# --- Reads ------------------------------------------------------------------------------------


def test_ping_reads_one_stage(adapter, sandbox):
    adapter.ping()
    record = only_request(sandbox)
    assert (record.method, record.path) == ("GET", "/2025-09/deals/stages")
    assert record.query == {"limit": ["1"]}
    assert record.headers["authorization"] == f"Bearer {adapter.connection.api_key}"


def test_reference_data_is_one_pipeline_in_position_order_with_staff_and_names(adapter, sandbox):
    ref = adapter.reference_data()
    (pipeline,) = ref.pipelines
    assert (pipeline.id, pipeline.name) == ("stora", "Stora")
    positions = [s.position for s in pipeline.stages]
    assert positions == sorted(positions) and positions != list(range(1, len(positions) + 1))
    assert {s.type for s in pipeline.stages} == {"open"}
    assert [c.label for c in ref.staff] == sorted(c.label for c in ref.staff)
    names = set(ref.names.values())
    assert {"Sarah Okafor", "株式会社ミナト", "Camden Riverside", "Sam Taylor"} <= names
    stage_call = sandbox.requests("stora")[0]
    assert stage_call.query["sort_by"] == ["position"]
    assert stage_call.query["sort_direction"] == ["ASC"]
    assert stage_call.query["limit"] == ["100"]


def test_reference_data_follows_pages_and_falls_back_to_email(adapter, sandbox, simulator):
    template = next(iter(simulator.contacts.values()))
    for number in range(150):
        contact = {**template, "id": f"con_extra{number:04d}", "full_name": None}
        contact["email"] = f"extra{number}@example.com"
        simulator.contacts[contact["id"]] = contact
    ref = adapter.reference_data()
    assert ref.names["con_extra0149"] == "extra149@example.com"
    pages = [r.query["page"] for r in sandbox.requests("stora") if r.path.endswith("/contacts")]
    assert pages == [["1"], ["2"]]


def test_list_deals_parses_rows_and_names_relations_from_reference_data(adapter, ref, sandbox):
    page = adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=40)
    assert page.total == 40 and len(page.deals) == 40 and page.next_cursor is None
    sarah = next(d for d in page.deals if d.name == "Unit 12B — Sarah Okafor")
    assert (sarah.provider, sarah.connection_slug, sarah.source_label) == (
        "stora",
        "stora",
        "Stora",
    )
    assert sarah.contact == Ref(sarah.contact.id, "Sarah Okafor")
    assert sarah.owner and sarah.owner.name in {c.label for c in ref.staff}
    assert sarah.site and sarah.site.name in ref.names.values()
    assert sarah.stage and sarah.stage.name in {s.name for s in ref.pipelines[0].stages}
    assert sarah.pipeline == ref.pipeline("stora")
    assert sarah.value is None and sarah.value_text
    assert sarah.updated_at.tzinfo is not None and sarah.created_at.tzinfo is not None
    assert "expand" not in only_request(sandbox).query


def test_deal_in_a_deleted_stage_shows_the_stage_name_without_an_id(adapter, ref, simulator):
    deal_id = next(d["id"] for d in simulator.deals.values() if "id" not in d["stage"])
    for deal in (
        adapter.get_deal(deal_id, ref=ref),
        *adapter.list_deals_at(DealQuery(), ref=ref, offset=0, limit=40).deals,
    ):
        if deal.id == deal_id:
            assert deal.stage.is_deleted
            assert (deal.stage.name, deal.stage.position) == (DELETED_STAGE_NAME, 3)


def test_deal_created_by_an_api_application_has_creator_api(adapter, ref, simulator):
    deal_id = next(
        d["id"] for d in simulator.deals.values() if d["creator"]["id"] == API_APPLICATION_ID
    )
    assert adapter.get_deal(deal_id, ref=ref).creator == Ref(None, "API")


def test_unknown_status_is_kept_verbatim_humanised_and_allows_nothing(adapter, ref, sandbox):
    deal_id = raw_deal(sandbox.simulators["stora"])["id"]
    sandbox.mutate_deal("stora", deal_id, {"status": "archived_by_admin"})
    deal = adapter.get_deal(deal_id, ref=ref)
    assert deal.status == "archived_by_admin"
    assert deal.status_label == "Archived by admin"
    assert adapter.actions(deal, ref=ref) == type(adapter.actions(deal, ref=ref))()


def test_get_deal_expands_relations_and_reads_every_field(adapter, ref, sandbox, simulator):
    raw = raw_deal(simulator, named="Unit 12B — Sarah Okafor")
    deal = adapter.get_deal(raw["id"], ref=ref)
    assert only_request(sandbox).query == {"expand": [S_A3_EXPAND]}
    assert deal.name == "Unit 12B — Sarah Okafor"
    assert deal.contact.name == "Sarah Okafor"
    assert deal.note == raw["note"] and deal.metadata == raw["metadata"]
    assert deal.starts_at == dt.datetime.fromisoformat(raw["starts_at"])
    assert [item.item_id for item in deal.line_items] == [
        i["item"]["id"] for i in raw["line_items"]
    ]
    assert deal.raw["id"] == raw["id"]


def test_html_name_is_kept_as_text(adapter, ref, simulator):
    deal_id = next(d["id"] for d in simulator.deals.values() if d["name"] == HTML_DEAL_NAME)
    assert adapter.get_deal(deal_id, ref=ref).name == HTML_DEAL_NAME


def test_odd_types_in_a_deal_never_crash_parsing(adapter, ref, sandbox):
    deal_id = raw_deal(sandbox.simulators["stora"])["id"]
    odd = {
        "name": None,
        "status": 7,
        "stage": "dstg_x",
        "assignee": 5,
        "creator": [],
        "contact": {"id": None},
        "site": {"id": "site_gone"},
        "line_items": "lots",
        "metadata": [],
        "note": {"x": 1},
        "starts_at": "soon",
        "created_at": 12,
        "updated_at": "2025-02-22T14:41:00",
        "value_estimate": 50,
        "lost_reason": False,
    }
    sandbox.mutate_deal("stora", deal_id, odd)
    deal = adapter.get_deal(deal_id, ref=ref)
    assert (deal.name, deal.status, deal.stage, deal.owner, deal.creator) == (
        "(untitled)",
        "unknown",
        None,
        None,
        None,
    )
    assert deal.site == Ref("site_gone", "site_gone", missing=True)
    assert (deal.line_items, deal.metadata, deal.note, deal.starts_at) == ((), {}, None, None)
    assert deal.updated_at == dt.datetime(2025, 2, 22, 14, 41, tzinfo=dt.UTC)
    assert deal.value_text is None and deal.lost_reason is None


def test_vendor_examples_parse(adapter):
    ref = ReferenceData()
    listed = example("stora", "deals.list.200.json")["deals"]
    deals = [adapter.parse_deal(row, ref=ref) for row in listed]
    assert deals[1].stage.is_deleted and deals[1].status == "won"
    assert deals[2].creator == Ref(None, "API")
    expanded = adapter.parse_deal(example("stora", "deals.show.expanded.200.json")["deal"], ref=ref)
    assert (expanded.owner.name, expanded.contact.name) == ("Sam Taylor", "Alex Morgan")
    assert (expanded.site.name, expanded.stage.name) == ("The Stack Overflow Station", "first")


def test_list_pushes_filters_and_sort_upstream(adapter, ref, sandbox):
    stage = ref.pipelines[0].stages[0]
    query = DealQuery(search="unit", status="open", stage_id=stage.id, sort="updated_at")
    page = adapter.list_deals(query, ref=ref, cursor=None, limit=10)
    assert only_request(sandbox).query == {
        "sort_by": ["updated_at"],
        "sort_direction": ["ASC"],
        "status": ["open"],
        "stage_id": [stage.id],
        "search": ["unit"],
        "page": ["1"],
        "limit": ["10"],
    }
    assert page.deals and all(d.stage.id == stage.id and d.is_open for d in page.deals)


@pytest.mark.parametrize("sort", ["-updated_at", "name", "-name", "value"])
def test_sorts_stora_cannot_do_ask_for_newest_updated_first(adapter, ref, sandbox, sort):
    adapter.list_deals(DealQuery(sort=sort), ref=ref, cursor=None, limit=5)
    query = only_request(sandbox).query
    assert (query["sort_by"], query["sort_direction"]) == (["updated_at"], ["DESC"])


def test_list_deals_cursor_continues_after_the_rows_consumed(adapter, ref, sandbox, simulator):
    seen, cursor, calls = [], None, 0
    while True:
        page = adapter.list_deals(DealQuery(), ref=ref, cursor=cursor, limit=15)
        calls += 1
        seen += [d.id for d in page.deals]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == upstream_order(simulator)
    assert len(sandbox.requests("stora")) == calls


@pytest.mark.parametrize(
    ("offset", "limit"), [(0, 25), (25, 25), (100, 50), (10, 25), (37, 20), (120, 50), (3, 97)]
)
def test_list_deals_at_serves_aligned_and_most_unaligned_windows_in_one_call(
    adapter, ref, sandbox, simulator, offset, limit
):
    simulator.reset("300")
    page = adapter.list_deals_at(DealQuery(), ref=ref, offset=offset, limit=limit)
    assert [d.id for d in page.deals] == upstream_order(simulator)[offset : offset + limit]
    assert len(sandbox.requests("stora")) == 1
    assert page.total == 300 and page.next_cursor == str(offset + limit)


def test_list_deals_at_falls_back_to_two_calls_when_no_page_size_fits(
    adapter, ref, sandbox, simulator
):
    simulator.reset("300")
    page = adapter.list_deals_at(DealQuery(), ref=ref, offset=150, limit=100)
    assert [d.id for d in page.deals] == upstream_order(simulator)[150:250]
    assert len(sandbox.requests("stora")) == 2


def test_list_deals_at_the_end_has_no_next_cursor(adapter, ref):
    page = adapter.list_deals_at(DealQuery(), ref=ref, offset=30, limit=25)
    assert len(page.deals) == 10 and page.next_cursor is None and page.total == 40


def test_page_for_window_prefers_the_smallest_page_that_holds_the_window():
    assert page_for_window(0, 25) == (25, 1)
    assert page_for_window(50, 25) == (25, 3)
    assert page_for_window(10, 25) == (35, 1)
    size, page = page_for_window(120, 50)
    assert (page - 1) * size <= 120 and page * size > 169


def test_another_pipeline_is_empty_without_a_call(adapter, ref, sandbox):
    page = adapter.list_deals(DealQuery(pipeline_id="pl_other"), ref=ref, cursor=None, limit=5)
    assert page.deals == () and sandbox.requests("stora") == []


# --- Fields and actions -----------------------------------------------------------------------


def test_editable_fields_are_name_note_move_in_date_assignee_and_line_items(
    adapter, ref, simulator
):
    raw = raw_deal(simulator, named="Unit 12B — Sarah Okafor")
    deal = adapter.get_deal(raw["id"], ref=ref)
    fields = {f.name: f for f in adapter.editable_fields(deal, ref=ref)}
    assert [(f.label, f.kind) for f in fields.values()] == [
        ("Name", "text"),
        ("Note", "textarea"),
        ("Move-in date", "date"),
        ("Assignee", "select"),
        ("Unit type", "select"),
        ("Protection", "select"),
    ]
    assert fields["name"].required and fields["name"].value == raw["name"]
    assert fields["starts_at"].value == deal.starts_at.date()
    assert fields["assignee"].value == raw["assignee"]["id"]
    assert fields["assignee"].choices[0].label == "Unassigned"
    assert fields["assignee"].choices[1:] == ref.staff


def test_open_deal_can_change_stage_win_or_lose_with_the_s_a7_reasons(adapter, ref, simulator):
    deal = adapter.get_deal(raw_deal(simulator)["id"], ref=ref)
    actions = adapter.actions(deal, ref=ref)
    assert actions.can_change_stage and actions.can_win and actions.can_lose
    assert not actions.can_reopen
    assert actions.stage_choices == ref.pipelines[0].ordered_stages()
    assert [c.value for c in actions.lost_reasons] == list(S_A7_LOST_REASONS)
    assert actions.lost_reasons[2].label == "Chose competitor"


@pytest.mark.parametrize("status", ["won", "lost"])
def test_closed_deal_can_only_reopen_to_any_stage_and_assignee(adapter, ref, simulator, status):
    deal = adapter.get_deal(raw_deal(simulator, status=status)["id"], ref=ref)
    actions = adapter.actions(deal, ref=ref)
    assert actions.can_reopen and not (actions.can_win or actions.can_lose)
    assert not actions.can_change_stage
    assert actions.reopen_stages == ref.pipelines[0].ordered_stages()
    assert actions.reopen_assignees == ref.staff


# --- Writes: the exact request each one sends --------------------------------------------------


def test_update_deal_patches_only_the_given_fields_without_an_idempotency_key(
    adapter, ref, sandbox, simulator
):
    raw = raw_deal(simulator)
    staff_id = ref.staff[0].value
    changes = {
        "name": "  Unit 1 — Renamed ",
        "note": "Call back Monday",
        "starts_at": dt.date(2025, 4, 1),
        "assignee": staff_id,
    }
    deal = adapter.update_deal(raw["id"], changes, ref=ref, idempotency_key="ik-1")
    record = only_request(sandbox)
    assert (record.method, record.path) == ("PATCH", f"/2025-09/deals/{raw['id']}")
    assert record.body == {
        "name": "Unit 1 — Renamed",
        "note": "Call back Monday",
        "starts_at": "2025-04-01T00:00:00Z",
        "assignee": {"id": staff_id},
    }
    assert "idempotency-key" not in record.headers
    assert (deal.name, deal.note, deal.owner.name) == (
        "Unit 1 — Renamed",
        "Call back Monday",
        ref.staff[0].label,
    )
    assert deal.starts_at == dt.datetime(2025, 4, 1, tzinfo=dt.UTC)


def test_update_deal_clears_with_nulls(adapter, ref, sandbox, simulator):
    raw = raw_deal(simulator)
    changes = {"note": "", "starts_at": None, "assignee": ""}
    deal = adapter.update_deal(raw["id"], changes, ref=ref, idempotency_key="ik")
    assert only_request(sandbox).body == {"note": None, "starts_at": None, "assignee": None}
    assert (deal.note, deal.starts_at, deal.owner) == (None, None, None)


def test_change_stage_of_an_open_deal_patches_the_stage(adapter, ref, sandbox, simulator):
    deal = adapter.get_deal(raw_deal(simulator)["id"], ref=ref)
    target = ref.pipelines[0].ordered_stages()[-1]
    sandbox.clear_log()
    moved = adapter.change_stage(deal, target.id, ref=ref, idempotency_key="ik-stage")
    record = only_request(sandbox)
    assert (record.method, record.body) == ("PATCH", {"stage": {"id": target.id}})
    assert "idempotency-key" not in record.headers
    assert moved.stage == target


def test_change_stage_of_a_closed_deal_is_refused_and_sends_nothing(
    adapter, ref, sandbox, simulator
):
    raw = raw_deal(simulator, status="lost")
    deal = adapter.get_deal(raw["id"], ref=ref)
    target = ref.pipelines[0].ordered_stages()[2]
    sandbox.clear_log()

    with pytest.raises(Conflict) as refused:
        adapter.change_stage(deal, target.id, ref=ref, idempotency_key="ik-stage")

    assert "lost" in refused.value.message and "Reopen" in refused.value.message
    assert sandbox.requests("stora") == []  # only a reopen, asked for as one, moves it
    assert simulator.deals[raw["id"]]["status"] == "lost"


def test_mark_won_posts_win_with_the_key_and_keeps_the_note(adapter, ref, sandbox, simulator):
    raw = raw_deal(simulator)
    simulator.deals[raw["id"]]["note"] = "Keep me"
    deal = adapter.get_deal(raw["id"], ref=ref)
    sandbox.clear_log()
    won = adapter.mark_won(deal, ref=ref, idempotency_key="ik-win")
    record = only_request(sandbox)
    assert (record.method, record.path, record.body) == (
        "POST",
        f"/2025-09/deals/{raw['id']}/win",
        None,
    )
    assert record.headers["idempotency-key"] == "ik-win"
    assert won.status == "won" and won.note == "Keep me"  # win's body has no note (§11.5)


def test_mark_lost_posts_the_reason(adapter, ref, sandbox, simulator):
    deal = adapter.get_deal(raw_deal(simulator)["id"], ref=ref)
    sandbox.clear_log()
    lost = adapter.mark_lost(deal, "chose_competitor", ref=ref, idempotency_key="ik-lose")
    record = only_request(sandbox)
    assert record.path.endswith("/lose") and record.body == {"lost_reason": "chose_competitor"}
    assert record.headers["idempotency-key"] == "ik-lose"
    assert (lost.status, lost.lost_reason, lost.lost_reason_label) == (
        "lost",
        "chose_competitor",
        "Chose competitor",
    )


def test_reopen_sends_only_what_was_chosen(adapter, ref, sandbox, simulator):
    raw = raw_deal(simulator, status="won")
    deal = adapter.get_deal(raw["id"], ref=ref)
    stage, staff = ref.pipelines[0].ordered_stages()[1], ref.staff[-1]
    sandbox.clear_log()
    reopened = adapter.reopen(
        deal, stage_id=stage.id, assignee_id=staff.value, ref=ref, idempotency_key="ik-a"
    )
    assert only_request(sandbox).body == {
        "stage": {"id": stage.id},
        "assignee": {"id": staff.value},
    }
    assert (reopened.stage, reopened.owner.name) == (stage, staff.label)
    adapter.mark_won(reopened, ref=ref, idempotency_key="ik-b")
    sandbox.clear_log()
    again = adapter.reopen(reopened, stage_id=None, assignee_id=None, ref=ref, idempotency_key="c")
    assert only_request(sandbox).body == {}
    assert again.stage == ref.pipelines[0].ordered_stages()[0]  # S-A8


def test_a_double_submit_with_one_key_acts_once(adapter, ref, sandbox, simulator):
    deal = adapter.get_deal(raw_deal(simulator)["id"], ref=ref)
    first = adapter.mark_won(deal, ref=ref, idempotency_key="same")
    second = adapter.mark_won(deal, ref=ref, idempotency_key="same")
    assert first.status == second.status == "won"
    assert first.updated_at == second.updated_at


# --- Errors -----------------------------------------------------------------------------------


def test_a_rejected_key_is_authentication_failed(stora_info, sandbox, settings):
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    adapter = StoraAdapter(dataclasses.replace(stora_info, api_key="wrong"))
    with pytest.raises(AuthenticationFailed) as caught:
        adapter.ping()
    assert (caught.value.status, caught.value.code) == (401, "invalid_token")
    assert caught.value.request_id.startswith("req_")


def test_a_missing_scope_is_forbidden(adapter, sandbox):
    sandbox.fail_next("stora", 1, 403, example("stora", "error.403.json"))
    with pytest.raises(Forbidden) as caught:
        adapter.ping()
    assert caught.value.code == "forbidden"


def test_an_unknown_deal_is_not_found(adapter, ref):
    with pytest.raises(NotFound) as caught:
        adapter.get_deal("deal_0000000000000000", ref=ref)
    assert caught.value.code == "resource_not_found"


def test_winning_a_closed_deal_is_a_conflict(adapter, ref, simulator):
    deal = adapter.get_deal(raw_deal(simulator, status="won")["id"], ref=ref)
    with pytest.raises(Conflict) as caught:
        adapter.mark_won(deal, ref=ref, idempotency_key="ik")
    assert caught.value.status == 409


def test_an_empty_name_is_a_validation_error_on_the_name_field(adapter, ref, simulator):
    deal_id = raw_deal(simulator)["id"]
    with pytest.raises(ValidationFailed) as caught:
        adapter.update_deal(deal_id, {"name": ""}, ref=ref, idempotency_key="ik")
    assert caught.value.field_errors == {"name": ["Must not be empty."]}


def test_an_unknown_lost_reason_is_a_validation_error_on_lost_reason(adapter, ref, simulator):
    deal = adapter.get_deal(raw_deal(simulator)["id"], ref=ref)
    with pytest.raises(ValidationFailed) as caught:
        adapter.mark_lost(deal, "contract_ended", ref=ref, idempotency_key="ik")
    assert list(caught.value.field_errors) == ["lost_reason"]


def test_pointers_at_other_fields_go_under_all(adapter, sandbox):
    sandbox.fail_next("stora", 1, 422, example("stora", "error.422.json"))
    with pytest.raises(ValidationFailed) as caught:
        adapter.ping()
    assert caught.value.field_errors == {"__all__": ["Does not match format: email."]}


def test_a_429_is_rate_limited_until_ratelimit_reset(adapter, sandbox):
    reset = str(int(time.time()) + 30)
    headers = {"RateLimit-Limit": "60", "RateLimit-Reset": reset}
    sandbox.fail_next("stora", 1, 429, example("stora", "error.429.json"), headers)
    with pytest.raises(RateLimited) as caught:
        adapter.ping()
    assert 28 <= caught.value.retry_after <= 30
    assert caught.value.retry_after_seconds in (29, 30)


def test_the_sandbox_rate_limit_reaches_the_user_as_rate_limited(adapter, sandbox):
    sandbox.set_rate_limiting("stora", True)
    with pytest.raises(RateLimited) as caught:
        for _ in range(11):
            adapter.ping()
    assert caught.value.code == "too_many_requests"
    assert 0 <= caught.value.retry_after <= 2


@pytest.mark.parametrize("status", [500, 502, 400])
def test_server_errors_are_unavailable(adapter, sandbox, status):
    body = example("stora", "error.500.json")
    if status == 400:
        body["error"].update(code="api_error", type="api_error")
    sandbox.fail_next("stora", 3, status, body)  # 3: a 502 is retried twice
    with pytest.raises(Unavailable) as caught:
        adapter.ping()
    assert caught.value.message == "Stora is unavailable right now."


@pytest.mark.parametrize("body", ["<html>oops", {"deal": []}, ["not", "an", "object"]])
def test_a_malformed_success_is_unavailable(adapter, ref, sandbox, body):
    sandbox.fail_next("stora", 1, 200, body)
    with pytest.raises(Unavailable) as caught:
        adapter.get_deal("deal_x", ref=ref)
    assert "could not read" in caught.value.message


def test_a_get_is_retried_on_503_at_most_twice(adapter, sandbox):
    sandbox.fail_next("stora", 2, 503, example("stora", "error.500.json"))
    adapter.ping()
    assert len(sandbox.requests("stora")) == 3
    sandbox.clear_log()
    sandbox.fail_next("stora", 3, 503, example("stora", "error.500.json"))
    with pytest.raises(Unavailable):
        adapter.ping()
    assert len(sandbox.requests("stora")) == 3


def test_a_post_is_never_retried(adapter, ref, sandbox, simulator):
    deal = adapter.get_deal(raw_deal(simulator)["id"], ref=ref)
    sandbox.clear_log()
    sandbox.fail_next("stora", 1, 503, example("stora", "error.500.json"))
    with pytest.raises(Unavailable):
        adapter.mark_won(deal, ref=ref, idempotency_key="ik")
    assert len(sandbox.requests("stora")) == 1
    assert simulator.deals[deal.id]["status"] == "open"


def test_the_client_budget_is_ten_a_second_and_sixty_a_minute_per_key(adapter):
    assert adapter.budget.limits == [(10, 1), (60, 60)]
    assert adapter.budget.scope == "stora:" + key_fingerprint(adapter.connection.api_key)


def test_the_client_budget_refuses_the_call_over_the_minute_limit_without_sending_it(
    adapter, sandbox, settings
):
    settings.DEALDESK_CLIENT_RATE_LIMITS = True
    adapter.budget.limits = [(1000, 1), (5, 60)]  # 60/min scaled down to keep the test fast
    if time.time() % 60 > 58:
        time.sleep(60 - time.time() % 60)  # stay inside one minute window
    for _ in range(3):  # reads may take 3 of the 5: one Save is kept for writes
        adapter.ping()
    with pytest.raises(RateLimited) as caught:
        adapter.ping()
    assert caught.value.code == "client_rate_budget"
    assert len(sandbox.requests("stora")) == 3
