"""The nodestash simulator over real HTTP, checked against ../shared/api/nodestash.md."""

from __future__ import annotations

import base64
import itertools
import json
import time
from decimal import Decimal
from typing import Any

import pytest
import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN
from dealdesk.sandbox.seed_nodestash import LARGE_DEAL_COUNT, build_seed

RATE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Burst-Limit",
    "X-RateLimit-Burst-Remaining",
    "X-Request-Id",
)


@pytest.fixture(autouse=True)
def no_rate_limit(sandbox):
    """Most tests fire more than 5 requests a second; the rate-limit tests turn it back on."""
    sandbox.set_rate_limiting("nodestash", False)


@pytest.fixture
def api(nodestash_info):
    def call(
        method: str,
        path: str,
        *,
        token: str | None = DEFAULT_NODESTASH_TOKEN,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, nodestash_info.base_url + path, headers=sent, timeout=5, **kwargs
        )

    return call


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["nodestash"]


def all_deals(api, **params: Any) -> list[dict[str, Any]]:
    deals, cursor = [], None
    for _ in range(200):
        page = api("GET", "/deals", params={**params, "limit": 7, "cursor": cursor}).json()
        deals += page["data"]
        cursor = page["meta"]["pagination"]["next_cursor"]
        if not cursor:
            return deals
    raise AssertionError("pagination never ended")


def pipeline_named(simulator, name: str) -> dict[str, Any]:
    return next(p for p in simulator.pipelines.values() if p["name"] == name)


def stage_of(pipeline: dict[str, Any], stage_type: str, index: int = 0) -> dict[str, Any]:
    return [s for s in pipeline["stages"] if s["type"] == stage_type][index]


def open_deal(simulator, pipeline_name: str = "Sales") -> dict[str, Any]:
    pipeline = pipeline_named(simulator, pipeline_name)
    open_ids = {s["id"] for s in pipeline["stages"] if s["type"] == "open"}
    return next(d for d in simulator.deals.values() if d["stage_id"] in open_ids)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "meta"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["meta"]["request_id"].startswith("req_")
    return body["error"]


# --- Envelopes and pagination -------------------------------------------------------------------


def test_list_envelope_repeats_the_id_inside_attributes(api):
    body = api("GET", "/deals", params={"limit": 2}).json()

    assert len(body["data"]) == 2
    for item in body["data"]:
        assert item["type"] == "deal"
        assert item["attributes"]["id"] == item["id"]
        assert set(item["attributes"]) >= {"title", "value", "currency", "stage_id", "tags"}
    assert body["meta"]["request_id"].startswith("req_")
    assert body["meta"]["pagination"]["has_more"] is True
    assert body["meta"]["pagination"]["next_cursor"]


def test_cursor_pagination_covers_every_deal_once(api, simulator):
    deals = all_deals(api)

    ids = [d["id"] for d in deals]
    assert len(ids) == len(set(ids)) == len(simulator.deals)
    created = [d["attributes"]["created_at"] for d in deals]
    assert created == sorted(created, reverse=True)  # default sort -created_at


def test_last_page_has_no_cursor(api, simulator):
    body = api("GET", "/deals", params={"limit": 100}).json()

    assert len(body["data"]) == len(simulator.deals)
    assert body["meta"]["pagination"] == {"next_cursor": None, "has_more": False}


def test_cursor_with_other_filters_is_refused(api, simulator):
    cursor = api("GET", "/deals", params={"limit": 2}).json()["meta"]["pagination"]["next_cursor"]
    pipeline_id = pipeline_named(simulator, "Sales")["id"]

    response = api("GET", "/deals", params={"cursor": cursor, "pipeline_id": pipeline_id})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "cursor"


@pytest.mark.parametrize("cursor", ["garbage!", base64.b64encode(b'{"offset": -1}').decode()])
def test_invalid_cursor_is_a_validation_error(api, cursor):
    response = api("GET", "/deals", params={"cursor": cursor})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-5", "", "²", "1e2"])
def test_limit_outside_1_to_100_is_refused(api, limit):
    response = api("GET", "/deals", params={"limit": limit})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"] == [
        {"field": "limit", "message": "Number must be between 1 and 100"}
    ]


def test_default_limit_is_20(api):
    assert len(api("GET", "/deals").json()["data"]) == 20


# --- Filters and sorts --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pipeline_id", "stage_id", "contact_id", "company_id"])
def test_id_filters_match_exactly(api, simulator, name):
    wanted = next(d[name] for d in simulator.deals.values() if d[name])
    expected = {d["id"] for d in simulator.deals.values() if d[name] == wanted}

    deals = all_deals(api, **{name: wanted})

    assert {d["id"] for d in deals} == expected
    assert expected


def test_tags_filter_needs_every_tag(api, simulator):
    simulator.mutate_deal(next(iter(simulator.deals)), {"tags": ["renewal", "vip"]})
    renewal = {d["id"] for d in simulator.deals.values() if "renewal" in d["tags"]}

    assert {d["id"] for d in all_deals(api, tags="renewal")} == renewal
    both = all_deals(api, tags="renewal,vip")
    assert [d["id"] for d in both] == [next(iter(simulator.deals))]


def test_value_range_filter_skips_deals_without_value(api):
    deals = all_deals(api, min_value="10000", max_value="50000.5")

    values = [Decimal(d["attributes"]["value"]) for d in deals]
    assert values
    assert all(Decimal(10000) <= v <= Decimal("50000.5") for v in values)


def test_bad_value_bound_is_refused(api):
    response = api("GET", "/deals", params={"min_value": "lots"})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "min_value"


@pytest.mark.parametrize("field", ["created_at", "updated_at", "value", "expected_close_date"])
def test_each_sort_orders_both_ways_with_nulls_last(api, field):
    def key(deal):
        raw = deal["attributes"][field]
        return Decimal(raw) if field == "value" and raw is not None else raw

    for descending in (False, True):
        deals = all_deals(api, sort=("-" if descending else "") + field)
        present = [key(d) for d in deals if key(d) is not None]
        nulls = [d for d in deals if key(d) is None]
        assert present == sorted(present, reverse=descending)
        assert deals[len(present) :] == nulls


def test_sort_takes_a_comma_list(api):
    deals = all_deals(api, sort="expected_close_date,-value")

    pairs = [
        (d["attributes"]["expected_close_date"], Decimal(d["attributes"]["value"]))
        for d in deals
        if d["attributes"]["expected_close_date"] and d["attributes"]["value"]
    ]
    for (date_a, value_a), (date_b, value_b) in itertools.pairwise(pairs):
        assert date_a < date_b or (date_a == date_b and value_a >= value_b)


@pytest.mark.parametrize("sort", ["title", "-name", "value,,", "created_at,bogus"])
def test_unknown_sort_is_refused(api, sort):
    response = api("GET", "/deals", params={"sort": sort})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "sort"


# --- One deal and include -----------------------------------------------------------------------


def test_get_deal_without_include_has_no_embedded_objects(api, simulator):
    deal_id = next(iter(simulator.deals))

    body = api("GET", f"/deals/{deal_id}").json()

    assert body["data"]["id"] == deal_id
    assert body["data"]["type"] == "deal"
    assert not {"contact", "company", "pipeline", "stage"} & set(body["data"]["attributes"])


def test_include_embeds_flat_attributes_n_a1(api, simulator):
    deal = open_deal(simulator)

    response = api(
        "GET", f"/deals/{deal['id']}", params={"include": "contact,company,pipeline,stage"}
    )

    attributes = response.json()["data"]["attributes"]
    assert attributes["contact"] == simulator.contacts[deal["contact_id"]]
    assert attributes["company"]["name"] == simulator.companies[deal["company_id"]]["name"]
    assert [s["position"] for s in attributes["pipeline"]["stages"]] == [0, 1, 2, 3, 4, 5]
    assert attributes["stage"]["id"] == deal["stage_id"]
    assert set(attributes["stage"]) == {
        "id",
        "name",
        "position",
        "type",
        "created_at",
        "updated_at",
    }


def test_include_of_a_dangling_contact_is_null(api, simulator):
    deal = next(d for d in simulator.deals.values() if d["contact_id"] not in simulator.contacts)

    response = api("GET", f"/deals/{deal['id']}", params={"include": "contact"})

    assert response.json()["data"]["attributes"]["contact"] is None


def test_unknown_include_is_refused(api, simulator):
    response = api("GET", f"/deals/{next(iter(simulator.deals))}", params={"include": "owner"})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "include"


@pytest.mark.parametrize(
    "path",
    [
        "/deals/ct_abc",
        "/deals/dl_doesNotExist",
        "/deals/dl_x-y",
        "/pipelines/dl_abc",
        "/contacts/co_abc",
        "/companies/ct_abc",
        "/nothing",
    ],
)
def test_unknown_or_wrongly_prefixed_ids_are_not_found(api, path):
    assert_error(api("GET", path), 404, "NOT_FOUND")


def test_patch_on_a_wrongly_prefixed_id_is_not_found(api):
    assert_error(api("PATCH", "/deals/pp_abc", json={"title": "x"}), 404, "NOT_FOUND")


# --- PATCH --------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(api, simulator):
    deal = dict(open_deal(simulator))

    response = api("PATCH", f"/deals/{deal['id']}", json={"title": "Renamed"})

    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert attributes["title"] == "Renamed"
    unchanged = {k: v for k, v in attributes.items() if k not in ("title", "updated_at")}
    assert unchanged == {k: v for k, v in deal.items() if k not in ("title", "updated_at")}
    assert attributes["updated_at"] > deal["updated_at"]


def test_value_goes_in_as_a_number_and_comes_back_as_a_decimal_string(api, simulator):
    deal = open_deal(simulator)

    first = api("PATCH", f"/deals/{deal['id']}", json={"value": 75000}).json()
    second = api("PATCH", f"/deals/{deal['id']}", json={"value": 82500.5}).json()

    assert first["data"]["attributes"]["value"] == "75000.00"
    assert second["data"]["attributes"]["value"] == "82500.50"


@pytest.mark.parametrize("value", ["75000", True, [1], {"a": 1}, -5, 1e20])
def test_value_that_is_not_a_plain_number_is_refused(api, simulator, value):
    deal = open_deal(simulator)
    before = dict(deal)

    response = api("PATCH", f"/deals/{deal['id']}", json={"value": value})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "value"
    assert simulator.deals[deal["id"]] == before


def test_null_clears_value_and_expected_close_date_n_a3(api, simulator):
    deal = next(d for d in simulator.deals.values() if d["value"] and d["expected_close_date"])

    response = api(
        "PATCH", f"/deals/{deal['id']}", json={"value": None, "expected_close_date": None}
    )

    attributes = response.json()["data"]["attributes"]
    assert attributes["value"] is None
    assert attributes["expected_close_date"] is None


def test_custom_fields_are_merged(api, simulator):
    deal = next(d for d in simulator.deals.values() if d["custom_fields"].get("priority"))
    priority = deal["custom_fields"]["priority"]

    response = api("PATCH", f"/deals/{deal['id']}", json={"custom_fields": {"campaign": "spring"}})

    assert response.json()["data"]["attributes"]["custom_fields"] == {
        "priority": priority,
        "campaign": "spring",
    }


def test_tags_replace_the_list_n_a2(api, simulator):
    deal = next(d for d in simulator.deals.values() if d["tags"])

    response = api("PATCH", f"/deals/{deal['id']}", json={"tags": ["upsell"]})

    assert response.json()["data"]["attributes"]["tags"] == ["upsell"]


def test_stage_of_another_pipeline_is_a_400_on_stage_id_n_a4(api, simulator):
    deal = open_deal(simulator, "Sales")
    foreign = stage_of(pipeline_named(simulator, "Partnerships"), "open")
    before = dict(deal)

    response = api("PATCH", f"/deals/{deal['id']}", json={"stage_id": foreign["id"], "title": "X"})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == [
        {"field": "stage_id", "message": "Stage must belong to the deal's current pipeline"}
    ]
    assert simulator.deals[deal["id"]] == before


def test_moving_to_a_lost_stage_sets_closed_at_and_reopening_clears_it(api, simulator):
    pipeline = pipeline_named(simulator, "Partnerships")
    deal = open_deal(simulator, "Partnerships")

    lost = api(
        "PATCH", f"/deals/{deal['id']}", json={"stage_id": stage_of(pipeline, "lost", 1)["id"]}
    )
    reopened = api(
        "PATCH", f"/deals/{deal['id']}", json={"stage_id": stage_of(pipeline, "open")["id"]}
    )

    assert lost.json()["data"]["attributes"]["closed_at"]
    assert lost.json()["data"]["attributes"]["stage_id"] == stage_of(pipeline, "lost", 1)["id"]
    assert reopened.json()["data"]["attributes"]["closed_at"] is None


def test_moving_to_a_won_stage_sets_closed_at(api, simulator):
    pipeline = pipeline_named(simulator, "Sales")
    deal = open_deal(simulator, "Sales")

    response = api(
        "PATCH", f"/deals/{deal['id']}", json={"stage_id": stage_of(pipeline, "won")["id"]}
    )

    attributes = response.json()["data"]["attributes"]
    assert attributes["closed_at"] == attributes["updated_at"]


def test_unknown_company_is_a_422(api, simulator):
    deal = open_deal(simulator)
    before = dict(deal)

    response = api("PATCH", f"/deals/{deal['id']}", json={"company_id": "co_nope", "title": "Y"})

    assert assert_error(response, 422, "UNPROCESSABLE_ENTITY")["message"] == "Company not found"
    assert simulator.deals[deal["id"]] == before


def test_known_contact_currency_and_date_are_accepted_n_a7(api, simulator):
    deal = open_deal(simulator)
    contact_id = list(simulator.contacts)[-1]

    response = api(
        "PATCH",
        f"/deals/{deal['id']}",
        json={"contact_id": contact_id, "currency": "usd", "expected_close_date": "2027-01-31"},
    )

    attributes = response.json()["data"]["attributes"]
    assert (attributes["contact_id"], attributes["currency"]) == (contact_id, "USD")
    assert attributes["expected_close_date"] == "2027-01-31"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"title": 5}, "title"),
        ({"currency": "EURO"}, "currency"),
        ({"tags": "vip"}, "tags"),
        ({"tags": [1, 2]}, "tags"),
        ({"tags": [str(i) for i in range(21)]}, "tags"),
        ({"custom_fields": ["a"]}, "custom_fields"),
        ({"expected_close_date": "2026-02-30"}, "expected_close_date"),
        ({"expected_close_date": "30.06.2026"}, "expected_close_date"),
        ({"stage_id": 7}, "stage_id"),
        ({"stage_id": "ps_unknown"}, "stage_id"),
        ({"contact_id": 12}, "contact_id"),
    ],
)
def test_wrong_types_are_validation_errors_and_change_nothing(api, simulator, body, field):
    deal = open_deal(simulator)
    before = dict(deal)

    response = api("PATCH", f"/deals/{deal['id']}", json=body)

    assert field in [d["field"] for d in assert_error(response, 400, "VALIDATION_ERROR")["details"]]
    assert simulator.deals[deal["id"]] == before


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe"])
def test_malformed_or_non_object_bodies_are_validation_errors(api, simulator, raw):
    deal = open_deal(simulator)
    before = dict(deal)

    response = api(
        "PATCH", f"/deals/{deal['id']}", data=raw, headers={"Content-Type": "application/json"}
    )

    assert_error(response, 400, "VALIDATION_ERROR")
    assert simulator.deals[deal["id"]] == before


def test_unknown_and_server_managed_fields_are_ignored(api, simulator):
    deal = dict(open_deal(simulator))

    response = api(
        "PATCH",
        f"/deals/{deal['id']}",
        json={"pipeline_id": "pp_other", "closed_at": "2020-01-01T00:00:00Z", "color": "red"},
    )

    attributes = response.json()["data"]["attributes"]
    assert (attributes["pipeline_id"], attributes["closed_at"]) == (deal["pipeline_id"], None)
    assert "color" not in attributes


def test_unsupported_method_is_refused(api):
    assert_error(api("DELETE", "/deals"), 405, "METHOD_NOT_ALLOWED")


# --- Idempotency (N-A6) -------------------------------------------------------------------------


def test_patch_with_the_same_idempotency_key_is_replayed(api, simulator):
    deal = open_deal(simulator)
    headers = {"Idempotency-Key": "key-1"}

    first = api("PATCH", f"/deals/{deal['id']}", json={"value": 10}, headers=headers)
    simulator.mutate_deal(deal["id"], {"value": 20})
    second = api("PATCH", f"/deals/{deal['id']}", json={"value": 10}, headers=headers)

    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert simulator.deals[deal["id"]]["value"] == "20.00"  # the replay changed nothing


def test_idempotency_key_reused_for_another_body_is_a_conflict(api, simulator):
    deal = open_deal(simulator)
    headers = {"Idempotency-Key": "key-2"}
    api("PATCH", f"/deals/{deal['id']}", json={"value": 10}, headers=headers)

    response = api("PATCH", f"/deals/{deal['id']}", json={"value": 11}, headers=headers)

    assert_error(response, 409, "CONFLICT")


# --- Auth, errors, rate limits ------------------------------------------------------------------


def test_missing_authorization_is_missing_auth(api):
    assert_error(api("GET", "/deals", token=None), 401, "MISSING_AUTH")


@pytest.mark.parametrize("header", ["Bearer nds_test_wrong", "Basic abc", "Bearer "])
def test_wrong_key_is_invalid_api_key(api, header):
    response = api("GET", "/deals", token=None, headers={"Authorization": header})

    assert_error(response, 401, "INVALID_API_KEY")


def test_every_response_carries_rate_limit_and_request_id_headers(api):
    for response in (api("GET", "/pipelines"), api("GET", "/deals/dl_nope"), api("GET", "/x")):
        assert all(name in response.headers for name in RATE_HEADERS)
        assert response.headers["X-Request-Id"] == response.json()["meta"]["request_id"]
    assert response.headers["X-RateLimit-Burst-Limit"] == "5"
    assert int(response.headers["X-RateLimit-Reset"]) % 86400 == 0  # midnight UTC


def test_more_than_5_requests_a_second_are_rate_limited(api, sandbox):
    sandbox.set_rate_limiting("nodestash", True)
    time.sleep(1 - time.time() % 1 + 0.01)  # start of a fresh one-second window

    statuses = [api("GET", "/pipelines") for _ in range(7)]

    assert [r.status_code for r in statuses[:5]] == [200] * 5
    limited = statuses[5]
    error = assert_error(limited, 429, "RATE_LIMITED")
    assert error["retry_after"] == 1
    assert error["upgrade_url"]
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Burst-Remaining"] == "0"


def test_rate_limiting_off_lets_bursts_through(api):
    assert {api("GET", "/pipelines").status_code for _ in range(8)} == {200}


# --- Pipelines, contacts, companies -------------------------------------------------------------


def test_pipelines_embed_ordered_stages(api):
    body = api("GET", "/pipelines", params={"limit": 100}).json()

    assert [p["attributes"]["name"] for p in body["data"]] == ["Sales", "Partnerships"]
    for pipeline in body["data"]:
        assert pipeline["type"] == "pipeline"
        stages = pipeline["attributes"]["stages"]
        assert [s["position"] for s in stages] == list(range(len(stages)))
        assert {s["type"] for s in stages} == {"open", "won", "lost"}


def test_pipelines_paginate_by_cursor(api):
    first = api("GET", "/pipelines", params={"limit": 1}).json()
    cursor = first["meta"]["pagination"]["next_cursor"]
    second = api("GET", "/pipelines", params={"limit": 1, "cursor": cursor}).json()

    assert first["data"][0]["id"] != second["data"][0]["id"]
    assert second["meta"]["pagination"] == {"next_cursor": None, "has_more": False}


def test_pipeline_deal_count_counts_pipeline_and_stages(api, simulator):
    pipeline = pipeline_named(simulator, "Sales")

    response = api("GET", f"/pipelines/{pipeline['id']}", params={"include": "deal_count"})

    attributes = response.json()["data"]["attributes"]
    in_pipeline = [d for d in simulator.deals.values() if d["pipeline_id"] == pipeline["id"]]
    assert attributes["deal_count"] == len(in_pipeline)
    for stage in attributes["stages"]:
        assert stage["deal_count"] == sum(d["stage_id"] == stage["id"] for d in in_pipeline)


def test_contacts_list_filters_and_show_includes_company(api, simulator):
    everyone = api("GET", "/contacts", params={"limit": 100}).json()["data"]
    annas = api("GET", "/contacts", params={"first_name": "ANN"}).json()["data"]
    contact_id = annas[0]["id"]
    shown = api("GET", f"/contacts/{contact_id}", params={"include": "company"}).json()

    assert len(everyone) == len(simulator.contacts)
    assert [c["attributes"]["first_name"] for c in annas] == ["Anna"]
    assert shown["data"]["type"] == "contact"
    company_id = simulator.contacts[contact_id]["company_id"]
    assert shown["data"]["attributes"]["company"]["id"] == company_id


def test_companies_list_sorts_and_show_counts_contacts(api, simulator):
    names = [
        c["attributes"]["name"]
        for c in api("GET", "/companies", params={"sort": "name"}).json()["data"]
    ]
    company_id = next(iter(simulator.companies))
    shown = api("GET", f"/companies/{company_id}", params={"include": "contact_count"}).json()

    assert names == sorted(c["name"] for c in simulator.companies.values())
    expected = sum(c["company_id"] == company_id for c in simulator.contacts.values())
    assert shown["data"]["attributes"]["contact_count"] == expected


# --- mutate_deal and seeds ----------------------------------------------------------------------


def test_mutate_deal_acts_as_another_user_and_bumps_updated_at(api, simulator, sandbox):
    deal = open_deal(simulator)
    before = deal["updated_at"]

    raw = sandbox.mutate_deal("nodestash", deal["id"], {"value": 999, "title": "Other user"})
    again = sandbox.mutate_deal("nodestash", deal["id"], {"title": "Other user again"})

    assert (raw["value"], raw["title"]) == ("999.00", "Other user")
    assert before < raw["updated_at"] < again["updated_at"]
    shown = api("GET", f"/deals/{deal['id']}").json()["data"]["attributes"]
    assert shown["title"] == "Other user again"


def test_mutate_deal_to_a_lost_stage_closes_it(simulator):
    pipeline = pipeline_named(simulator, "Sales")
    deal = open_deal(simulator)

    raw = simulator.mutate_deal(deal["id"], {"stage_id": stage_of(pipeline, "lost")["id"]})

    assert raw["closed_at"]


def test_demo_seed_looks_like_a_sales_team(simulator):
    deals = list(simulator.deals.values())
    stage_types = {s["id"]: s["type"] for p in simulator.pipelines.values() for s in p["stages"]}

    assert 35 <= len(deals) <= 45
    assert len(simulator.pipelines) == 2
    assert [
        len([s for s in p["stages"] if s["type"] == "lost"]) for p in simulator.pipelines.values()
    ] == [1, 2]
    assert {stage_types[d["stage_id"]] for d in deals} == {"open", "won", "lost"}
    for deal in deals:
        closed = stage_types[deal["stage_id"]] != "open"
        assert bool(deal["closed_at"]) == closed
        assert deal["owner_id"] is None
    assert any("<img src=x onerror=alert(1)>" in d["title"] for d in deals)
    assert any(d["title"].startswith("Müller & Söhne") for d in deals)
    assert {d["currency"] for d in deals} == {"EUR", "USD", "GBP"}
    assert any(d["value"] is None for d in deals)
    assert any(c["first_name"] is None and c["email"] for c in simulator.contacts.values())


def test_seeds_are_deterministic_and_sized():
    first, second = build_seed("demo"), build_seed("demo")

    assert list(first.deals) == list(second.deals)
    assert [d["title"] for d in first.deals.values()] == [d["title"] for d in second.deals.values()]
    assert len(build_seed("120").deals) == 120
    assert len(build_seed("large").deals) == LARGE_DEAL_COUNT


def test_request_log_records_the_parsed_patch_body(api, sandbox, simulator):
    deal = open_deal(simulator)
    sandbox.clear_log()

    api("PATCH", f"/deals/{deal['id']}", json={"title": "Logged"}, headers={"Idempotency-Key": "k"})

    (record,) = sandbox.requests("nodestash")
    assert (record.method, record.path, record.body) == (
        "PATCH",
        f"/v1/deals/{deal['id']}",
        {"title": "Logged"},
    )
    assert record.headers["idempotency-key"] == "k"
    assert json.dumps(record.body)


def test_odd_stored_values_never_break_lists_sorts_or_includes(api, simulator, sandbox):
    deal_id = next(iter(simulator.deals))
    sandbox.mutate_deal(
        "nodestash",
        deal_id,
        {
            "value": "12,50 €",
            "tags": [{"a": 1}, "vip"],
            "created_at": 5,
            "expected_close_date": ["x"],
            "contact_id": ["ct_x"],
            "pipeline_id": {"id": 1},
            "stage_id": None,
        },
    )
    pipeline_id = next(iter(simulator.pipelines))
    queries = [
        ("/deals", {"sort": "value"}),
        ("/deals", {"sort": "-expected_close_date,created_at"}),
        ("/deals", {"min_value": "0", "tags": "vip"}),
        (f"/deals/{deal_id}", {"include": "contact,company,pipeline,stage"}),
        (f"/pipelines/{pipeline_id}", {"include": "deal_count"}),
    ]

    for path, params in queries:
        assert api("GET", path, params=params).status_code == 200, (path, params)


def test_mutate_deal_refuses_a_value_that_is_not_finite(simulator):
    deal_id = next(iter(simulator.deals))
    before = dict(simulator.deals[deal_id])

    with pytest.raises(ValueError):
        simulator.mutate_deal(deal_id, {"value": float("nan"), "title": "changed"})

    assert simulator.deals[deal_id] == before
