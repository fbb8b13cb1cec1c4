"""The nodestash adapter against the sandbox over real HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

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
from dealdesk.providers.nodestash import N_A1_INCLUDE, NodestashAdapter
from tests.providers.conftest import example


@pytest.fixture
def adapter(nodestash_info, sandbox) -> NodestashAdapter:
    """Rate limits out of the way; the budget tests below build their own adapters."""
    sandbox.set_rate_limiting("nodestash", False)
    adapter = NodestashAdapter(nodestash_info)
    adapter.budget.limits = [(1000, 1)]
    return adapter


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["nodestash"]


def pipeline(ref: ReferenceData, name: str):
    return next(p for p in ref.pipelines if p.name == name)


def deal_in(simulator, ref: ReferenceData, pipeline_name: str, stage_type: str) -> str:
    stage_ids = {s.id for s in pipeline(ref, pipeline_name).stages_of_type(stage_type)}
    return next(d["id"] for d in simulator.deals.values() if d["stage_id"] in stage_ids)


def only_request(sandbox):
    (record,) = sandbox.requests("nodestash")
    return record


# --- Reads --------------------------------------------------------------------------------------


def test_ping_reads_one_pipeline(adapter, sandbox):
    adapter.ping()

    record = only_request(sandbox)
    assert (record.method, record.path, record.query) == ("GET", "/v1/pipelines", {"limit": ["1"]})
    assert record.headers["authorization"] == f"Bearer {adapter.connection.api_key}"


def test_reference_data_has_pipelines_names_and_no_staff(adapter, simulator):
    ref = adapter.reference_data()

    assert [p.name for p in ref.pipelines] == ["Sales", "Partnerships"]
    partnerships = pipeline(ref, "Partnerships")
    assert [s.position for s in partnerships.stages] == [0, 1, 2, 3, 4, 5]
    assert [s.name for s in partnerships.stages_of_type("lost")] == [
        "Lost – no budget",
        "Lost – competitor",
    ]
    assert all(s.pipeline_id == partnerships.id for s in partnerships.stages)
    assert ref.staff == ()
    assert "Anna Schmidt" in ref.names.values()
    assert "procurement@mueller-soehne.de" in ref.names.values()  # contact with only an email
    assert "Ωmega Λtd" in ref.names.values()
    assert len(ref.names) == len(simulator.contacts) + len(simulator.companies)


def test_reference_data_follows_cursors(adapter, sandbox):
    sandbox.reset("120")  # 150 contacts: two pages of 100
    sandbox.set_rate_limiting("nodestash", False)

    ref = adapter.reference_data()

    assert len(ref.names) == 150 + 40
    contact_calls = [r for r in sandbox.requests("nodestash") if r.path == "/v1/contacts"]
    assert len(contact_calls) == 2
    assert "cursor" in contact_calls[1].query


def test_list_deals_parses_status_value_and_links(adapter, ref, simulator):
    page = adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=100)

    assert page.total is None
    assert page.next_cursor is None
    assert len(page.deals) == len(simulator.deals)
    assert {d.status for d in page.deals} == {"open", "won", "lost"}
    for deal in page.deals:
        raw = simulator.deals[deal.id]
        assert deal.provider == "nodestash"
        assert deal.stage.id == raw["stage_id"]
        assert deal.status == ref.stage(raw["stage_id"]).type
        assert deal.pipeline.id == raw["pipeline_id"]
        assert deal.owner is None
        assert deal.updated_at.tzinfo is not None
        assert (deal.closed_at is not None) == deal.is_closed
        if raw["value"] is None:
            assert deal.value is None
        else:
            assert deal.value.amount == Decimal(raw["value"])
            assert deal.value.currency == raw["currency"]
    renewal = next(d for d in page.deals if d.name == "Acme GmbH — 50 seats renewal")
    assert renewal.value.amount == Decimal("42000.00")
    assert renewal.company == Ref(renewal.raw["company_id"], "Acme GmbH")
    assert isinstance(renewal.expected_close_date, dt.date | None)


def test_dangling_contact_shows_as_removed_in_list_and_detail(adapter, ref, simulator):
    deal_id = next(
        d["id"] for d in simulator.deals.values() if d["contact_id"] == "ct_Deleted0Contact0000x"
    )

    listed = next(
        d
        for d in adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=100).deals
        if d.id == deal_id
    )
    detail = adapter.get_deal(deal_id, ref=ref)

    for deal in (listed, detail):
        assert deal.contact == Ref("ct_Deleted0Contact0000x", "Removed contact", missing=True)


def test_list_deals_follows_the_upstream_cursor(adapter, ref, simulator):
    seen, cursor = [], None
    for _ in range(20):
        page = adapter.list_deals(DealQuery(), ref=ref, cursor=cursor, limit=15)
        seen += [d.id for d in page.deals]
        cursor = page.next_cursor
        if cursor is None:
            break

    assert sorted(seen) == sorted(simulator.deals)
    assert len(seen) == len(set(seen))


def test_list_deals_pushes_pipeline_stage_and_sort_upstream(adapter, ref, sandbox):
    sales = pipeline(ref, "Sales")
    query = DealQuery(pipeline_id=sales.id, stage_id=sales.stages[1].id, sort="-value")

    page = adapter.list_deals(query, ref=ref, cursor=None, limit=500)

    assert all(d.stage.id == sales.stages[1].id for d in page.deals)
    assert only_request(sandbox).query == {
        "limit": ["100"],
        "sort": ["-value"],
        "pipeline_id": [sales.id],
        "stage_id": [sales.stages[1].id],
    }


@pytest.mark.parametrize(
    ("sort", "upstream"),
    [
        ("-updated_at", "-updated_at"),
        ("updated_at", "updated_at"),
        ("value", "value"),
        ("name", "-updated_at"),
        ("-name", "-updated_at"),
    ],
)
def test_sorts_the_api_cannot_do_fall_back_to_recent_first(adapter, ref, sandbox, sort, upstream):
    adapter.list_deals(DealQuery(sort=sort), ref=ref, cursor=None, limit=10)

    assert only_request(sandbox).query["sort"] == [upstream]


def test_status_goes_upstream_as_the_stage_ids_of_that_type(adapter, ref, sandbox):
    sales, partnerships = pipeline(ref, "Sales"), pipeline(ref, "Partnerships")
    lost_stages = [s.id for s in partnerships.stages_of_type("lost")]
    assert len(lost_stages) == 2

    won = adapter.list_deals(
        DealQuery(status="won", pipeline_id=sales.id), ref=ref, cursor=None, limit=100
    )
    lost = adapter.list_deals(
        DealQuery(status="lost", pipeline_id=partnerships.id), ref=ref, cursor=None, limit=100
    )
    adapter.list_deals(DealQuery(status="open"), ref=ref, cursor=None, limit=100)

    first, *per_lost_stage, last = sandbox.requests("nodestash")
    assert first.query["stage_id"] == [sales.stages_of_type("won")[0].id]
    assert {d.status for d in won.deals} == {"won"}
    assert sorted(r.query["stage_id"][0] for r in per_lost_stage) == sorted(lost_stages)
    assert {d.status for d in lost.deals} == {"lost"}
    assert "stage_id" not in last.query  # several open stages: the service filters locally


def test_get_deal_makes_one_call_with_include(adapter, ref, sandbox, simulator):
    deal_id = deal_in(simulator, ref, "Sales", "open")
    raw = simulator.deals[deal_id]

    deal = adapter.get_deal(deal_id, ref=ReferenceData())  # names come from the embedded objects

    record = only_request(sandbox)
    assert (record.method, record.path) == ("GET", f"/v1/deals/{deal_id}")
    assert record.query == {"include": [N_A1_INCLUDE]}
    assert deal.contact.name == ref.names[raw["contact_id"]]
    assert deal.company.name == ref.names[raw["company_id"]]
    assert deal.stage == ref.stage(raw["stage_id"])
    assert deal.pipeline.name == "Sales"
    assert deal.status == "open"


def test_unknown_stage_shows_as_unknown(adapter, ref, sandbox):
    deal_id = next(iter(sandbox.simulators["nodestash"].deals))
    sandbox.mutate_deal("nodestash", deal_id, {"stage_id": "ps_DeletedStage"})

    deal = adapter.get_deal(deal_id, ref=ref)

    assert deal.status == "unknown"
    assert (deal.stage.id, deal.stage.name) == ("ps_DeletedStage", "Unknown stage")
    assert adapter.actions(deal, ref=ref).can_win is False


def test_odd_types_never_crash_parsing(adapter, ref, sandbox):
    deal_id = next(iter(sandbox.simulators["nodestash"].deals))
    sandbox.mutate_deal(
        "nodestash",
        deal_id,
        {
            "value": "12,50 €",
            "tags": "vip",
            "custom_fields": ["x"],
            "created_at": 5,
            "title": None,
            "expected_close_date": "someday",
            "contact_id": 42,
            "stage_id": None,
        },
    )

    deal = adapter.get_deal(deal_id, ref=ref)

    assert (deal.value, deal.tags, deal.custom_fields) == (None, (), {})
    assert (deal.created_at, deal.expected_close_date, deal.contact) == (None, None, None)
    assert (deal.name, deal.status, deal.stage) == ("", "unknown", None)


def test_unknown_deal_and_wrong_prefix_are_not_found(adapter, ref):
    for deal_id in ("dl_doesNotExist", "ct_5hJ3kM9pQrVwXyZaB2cD4", "../pipelines"):
        with pytest.raises(NotFound):
            adapter.get_deal(deal_id, ref=ref)


# --- Fields and actions -------------------------------------------------------------------------


def test_editable_fields_are_name_value_tags_and_expected_close_date(adapter, ref, simulator):
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "open"), ref=ref)

    fields = adapter.editable_fields(deal, ref=ref)

    assert [(f.name, f.label, f.kind) for f in fields] == [
        ("name", "Name", "text"),
        ("value", "Value", "number"),
        ("tags", "Tags", "tags"),
        ("expected_close_date", "Expected close date", "date"),
    ]
    name, value, tags, expected = fields
    assert (name.value, name.required, name.max_length) == (deal.name, True, 300)
    assert value.value == (deal.value.amount if deal.value else None)
    assert value.help_text == deal.raw["currency"]
    assert tags.value == deal.tags
    assert expected.value == deal.expected_close_date


def test_open_deal_can_win_or_lose_to_either_lost_stage(adapter, ref, simulator):
    partnerships = pipeline(ref, "Partnerships")
    deal = adapter.get_deal(deal_in(simulator, ref, "Partnerships", "open"), ref=ref)

    actions = adapter.actions(deal, ref=ref)

    assert actions.can_change_stage and actions.can_win and actions.can_lose
    assert not actions.can_reopen
    assert actions.stage_choices == partnerships.stages_of_type("open")
    assert [s.name for s in actions.lost_stages] == ["Lost – no budget", "Lost – competitor"]
    assert actions.lost_reasons == () and actions.reopen_assignees == ()


def test_closed_deal_can_reopen_to_an_open_stage(adapter, ref, simulator):
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "won"), ref=ref)

    actions = adapter.actions(deal, ref=ref)

    assert actions.can_reopen and not actions.can_win and not actions.can_lose
    assert actions.reopen_stages == pipeline(ref, "Sales").stages_of_type("open")


# --- Writes: the exact requests -----------------------------------------------------------------


def test_update_deal_sends_one_patch_with_our_fields_renamed(adapter, ref, sandbox, simulator):
    deal_id = deal_in(simulator, ref, "Sales", "open")
    changes = {
        "name": "Acme GmbH — 60 seats",
        "value": Decimal("82500.50"),
        "tags": ("enterprise", "q3"),
        "expected_close_date": dt.date(2027, 3, 31),
    }

    deal = adapter.update_deal(deal_id, changes, ref=ref, idempotency_key="edit-1")

    record = only_request(sandbox)
    assert (record.method, record.path) == ("PATCH", f"/v1/deals/{deal_id}")
    assert record.body == {
        "title": "Acme GmbH — 60 seats",
        "value": 82500.5,
        "tags": ["enterprise", "q3"],
        "expected_close_date": "2027-03-31",
    }
    assert record.headers["idempotency-key"] == "edit-1"
    assert record.headers["content-type"] == "application/json"
    assert deal.name == "Acme GmbH — 60 seats"
    assert deal.value.amount == Decimal("82500.50")
    assert deal.tags == ("enterprise", "q3")
    assert deal.expected_close_date == dt.date(2027, 3, 31)
    assert deal.company.name == ref.names[deal.raw["company_id"]]


def test_integral_value_is_sent_as_an_integer_and_none_clears(adapter, ref, sandbox, simulator):
    deal_id = deal_in(simulator, ref, "Sales", "open")

    adapter.update_deal(deal_id, {"value": Decimal("75000.00")}, ref=ref, idempotency_key="a")
    cleared = adapter.update_deal(
        deal_id, {"value": None, "expected_close_date": None}, ref=ref, idempotency_key="b"
    )

    first, second = sandbox.requests("nodestash")
    assert first.body == {"value": 75000}
    assert second.body == {"value": None, "expected_close_date": None}
    assert (cleared.value, cleared.expected_close_date) == (None, None)


def test_a_field_nodestash_cannot_edit_is_refused_before_sending(adapter, ref, sandbox, simulator):
    deal_id = deal_in(simulator, ref, "Sales", "open")

    with pytest.raises(ValidationFailed):
        adapter.update_deal(deal_id, {"note": "hi"}, ref=ref, idempotency_key="x")

    assert sandbox.requests("nodestash") == []


def test_change_stage_patches_stage_id(adapter, ref, sandbox, simulator):
    sales = pipeline(ref, "Sales")
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "open"), ref=ref)
    target = sales.stages_of_type("open")[-1]
    sandbox.clear_log()

    moved = adapter.change_stage(deal, target.id, ref=ref, idempotency_key="stage-1")

    record = only_request(sandbox)
    assert (record.method, record.body) == ("PATCH", {"stage_id": target.id})
    assert record.headers["idempotency-key"] == "stage-1"
    assert moved.stage == target


def test_mark_won_moves_to_the_first_won_stage(adapter, ref, sandbox, simulator):
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "open"), ref=ref)
    sandbox.clear_log()

    won = adapter.mark_won(deal, ref=ref, idempotency_key="won-1")

    assert only_request(sandbox).body == {
        "stage_id": pipeline(ref, "Sales").stages_of_type("won")[0].id
    }
    assert won.status == "won"
    assert won.closed_at is not None


def test_mark_lost_uses_the_chosen_one_of_two_lost_stages(adapter, ref, sandbox, simulator):
    competitor = pipeline(ref, "Partnerships").stages_of_type("lost")[1]
    deal = adapter.get_deal(deal_in(simulator, ref, "Partnerships", "open"), ref=ref)
    sandbox.clear_log()

    lost = adapter.mark_lost(deal, competitor.id, ref=ref, idempotency_key="lost-1")

    assert only_request(sandbox).body == {"stage_id": competitor.id}
    assert (lost.status, lost.stage.name) == ("lost", "Lost – competitor")
    assert lost.closed_at is not None


@pytest.mark.parametrize("reason", ["", "won", "open", "ps_unknown"])
def test_mark_lost_refuses_anything_but_a_lost_stage(adapter, ref, sandbox, simulator, reason):
    partnerships = pipeline(ref, "Partnerships")
    deal = adapter.get_deal(deal_in(simulator, ref, "Partnerships", "open"), ref=ref)
    stage_ids = {t: partnerships.stages_of_type(t)[0].id for t in ("won", "open")}
    sandbox.clear_log()

    with pytest.raises(ValidationFailed) as error:
        adapter.mark_lost(deal, stage_ids.get(reason, reason), ref=ref, idempotency_key="x")

    assert "lost_stage" in error.value.field_errors
    assert sandbox.requests("nodestash") == []


def test_mark_lost_without_a_choice_uses_the_only_lost_stage(adapter, ref, sandbox, simulator):
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "open"), ref=ref)

    lost = adapter.mark_lost(deal, "", ref=ref, idempotency_key="x")

    assert lost.stage == pipeline(ref, "Sales").stages_of_type("lost")[0]


def test_reopen_defaults_to_the_first_open_stage_and_clears_closed_at(
    adapter, ref, sandbox, simulator
):
    deal = adapter.get_deal(deal_in(simulator, ref, "Partnerships", "lost"), ref=ref)
    sandbox.clear_log()

    reopened = adapter.reopen(
        deal, stage_id=None, assignee_id="ignored", ref=ref, idempotency_key="r"
    )

    first_open = pipeline(ref, "Partnerships").stages_of_type("open")[0]
    assert only_request(sandbox).body == {"stage_id": first_open.id}
    assert (reopened.status, reopened.closed_at) == ("open", None)


def test_reopen_to_a_chosen_stage_and_refuses_a_closed_one(adapter, ref, sandbox, simulator):
    sales = pipeline(ref, "Sales")
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "lost"), ref=ref)

    reopened = adapter.reopen(
        deal, stage_id=sales.stages[2].id, assignee_id=None, ref=ref, idempotency_key="r"
    )
    with pytest.raises(ValidationFailed) as error:
        adapter.reopen(
            deal,
            stage_id=sales.stages_of_type("won")[0].id,
            assignee_id=None,
            ref=ref,
            idempotency_key="s",
        )

    assert reopened.stage == sales.stages[2]
    assert "stage" in error.value.field_errors


# --- Error mapping ------------------------------------------------------------------------------


def test_upstream_400_on_title_maps_to_our_name_field(adapter, ref, simulator):
    deal_id = deal_in(simulator, ref, "Sales", "open")

    with pytest.raises(ValidationFailed) as error:
        adapter.update_deal(deal_id, {"name": "x" * 301}, ref=ref, idempotency_key="k")

    assert list(error.value.field_errors) == ["name"]
    assert error.value.status == 400
    assert error.value.code == "VALIDATION_ERROR"
    assert error.value.request_id.startswith("req_")


def test_upstream_400_on_stage_id_maps_to_our_stage_field(adapter, ref, simulator):
    foreign = pipeline(ref, "Partnerships").stages_of_type("open")[0]
    deal = adapter.get_deal(deal_in(simulator, ref, "Sales", "open"), ref=ref)
    unknown_pipeline = dataclasses.replace(deal, pipeline=None, stage=None)

    with pytest.raises(ValidationFailed) as error:
        adapter.change_stage(unknown_pipeline, foreign.id, ref=ReferenceData(), idempotency_key="k")

    assert error.value.field_errors == {
        "stage": ["Stage must belong to the deal's current pipeline"]
    }


def test_422_is_a_validation_failure_for_the_whole_form(adapter, ref, sandbox, simulator):
    sandbox.fail_next("nodestash", 1, 422, example("nodestash", "deals.update.422.json"))

    with pytest.raises(ValidationFailed) as error:
        adapter.update_deal(
            deal_in(simulator, ref, "Sales", "open"), {"name": "x"}, ref=ref, idempotency_key="k"
        )

    assert error.value.field_errors == {"__all__": ["Company not found"]}


def test_wrong_api_key_is_an_authentication_failure(nodestash_info, sandbox):
    adapter = NodestashAdapter(dataclasses.replace(nodestash_info, api_key="nds_test_wrong"))

    with pytest.raises(AuthenticationFailed) as error:
        adapter.ping()

    assert (error.value.status, error.value.code) == (401, "INVALID_API_KEY")


def test_missing_auth_is_an_authentication_failure_too(adapter, sandbox):
    sandbox.fail_next("nodestash", 1, 401, example("nodestash", "error.401.missing-auth.json"))

    with pytest.raises(AuthenticationFailed) as error:
        adapter.ping()

    assert error.value.code == "MISSING_AUTH"


def test_insufficient_scope_is_forbidden_and_names_the_scope(adapter, ref, sandbox, simulator):
    sandbox.fail_next("nodestash", 1, 403, example("nodestash", "error.403.json"))

    with pytest.raises(Forbidden) as error:
        adapter.update_deal(
            deal_in(simulator, ref, "Sales", "open"), {"name": "x"}, ref=ref, idempotency_key="k"
        )

    assert "deals:write" in error.value.message
    assert error.value.code == "INSUFFICIENT_SCOPE"


def test_409_is_a_conflict(adapter, sandbox):
    sandbox.fail_next("nodestash", 1, 409, example("nodestash", "error.409.json"))

    with pytest.raises(Conflict):
        adapter.ping()


def test_429_takes_retry_after_from_the_header(adapter, sandbox):
    sandbox.fail_next(
        "nodestash", 1, 429, example("nodestash", "error.429.json"), headers={"Retry-After": "7"}
    )

    with pytest.raises(RateLimited) as error:
        adapter.ping()

    assert error.value.retry_after == 7
    assert error.value.code == "RATE_LIMITED"


def test_429_falls_back_to_retry_after_in_the_body(adapter, sandbox):
    sandbox.fail_next("nodestash", 1, 429, example("nodestash", "error.429.json"))

    with pytest.raises(RateLimited) as error:
        adapter.ping()

    assert error.value.retry_after == 1


def test_real_burst_limit_429_from_the_sandbox(adapter, sandbox):
    sandbox.set_rate_limiting("nodestash", True)

    with pytest.raises(RateLimited) as error:
        for _ in range(12):
            adapter.ping()

    assert error.value.code == "RATE_LIMITED"
    assert error.value.retry_after == 1


@pytest.mark.parametrize("status", [500, 418])
def test_server_errors_are_unavailable(adapter, sandbox, status):
    sandbox.fail_next("nodestash", 1, status, example("nodestash", "error.500.json"))

    with pytest.raises(Unavailable) as error:
        adapter.ping()

    assert error.value.message == "nodestash is unavailable right now."


@pytest.mark.parametrize("body", ["<html>oops", {"data": "not a list"}, [1, 2]])
def test_a_body_that_is_not_the_expected_json_is_unavailable(adapter, ref, sandbox, body):
    sandbox.fail_next("nodestash", 1, 200, body)

    with pytest.raises(Unavailable) as error:
        adapter.list_deals(DealQuery(), ref=ref, cursor=None, limit=10)

    assert error.value.code == "malformed_response"


def test_get_is_retried_on_503_at_most_twice(adapter, ref, sandbox):
    sandbox.fail_next("nodestash", 5, 503, example("nodestash", "error.500.json"))

    with pytest.raises(Unavailable):
        adapter.get_deal("dl_anything", ref=ref)

    assert len(sandbox.requests("nodestash")) == 3


def test_get_succeeds_after_one_503(adapter, ref, sandbox, simulator):
    deal_id = next(iter(simulator.deals))
    sandbox.fail_next("nodestash", 1, 503)

    assert adapter.get_deal(deal_id, ref=ref).id == deal_id
    assert len(sandbox.requests("nodestash")) == 2


def test_patch_is_never_retried(adapter, ref, sandbox, simulator):
    deal_id = deal_in(simulator, ref, "Sales", "open")
    sandbox.fail_next("nodestash", 3, 503)

    with pytest.raises(Unavailable):
        adapter.update_deal(deal_id, {"name": "Once"}, ref=ref, idempotency_key="k")

    assert [r.method for r in sandbox.requests("nodestash")] == ["PATCH"]


# --- Rate budget --------------------------------------------------------------------------------


def test_default_budget_is_five_a_second_per_key(nodestash_info, sandbox):
    adapter = NodestashAdapter(nodestash_info)

    assert adapter.budget.limits == [(5, 1)]
    assert adapter.budget.scope == "nodestash:" + key_fingerprint(nodestash_info.api_key)


def test_burst_limit_is_learned_from_headers_for_later_budgets(nodestash_info, sandbox, simulator):
    simulator.burst_limit = 25
    try:
        NodestashAdapter(nodestash_info).ping()
    finally:
        del simulator.burst_limit  # back to the class default

    assert NodestashAdapter(nodestash_info).budget.limits == [(25, 1)]


def test_spent_budget_refuses_without_sending(nodestash_info, sandbox):
    adapter = NodestashAdapter(nodestash_info)
    adapter.budget.limits = [(5, 3600)]  # reads may take 3 of 5: one Save is kept for writes

    for _ in range(3):
        adapter.ping()
    with pytest.raises(RateLimited) as error:
        adapter.ping()

    assert error.value.code == "client_rate_budget"
    assert len(sandbox.requests("nodestash")) == 3


def test_empty_tags_clear_the_list_and_an_empty_name_is_refused_locally(
    adapter, ref, sandbox, simulator
):
    deal_id = deal_in(simulator, ref, "Sales", "open")

    cleared = adapter.update_deal(deal_id, {"tags": ()}, ref=ref, idempotency_key="t")
    with pytest.raises(ValidationFailed) as error:
        adapter.update_deal(deal_id, {"name": ""}, ref=ref, idempotency_key="n")

    assert only_request(sandbox).body == {"tags": []}
    assert cleared.tags == ()
    assert "name" in error.value.field_errors
