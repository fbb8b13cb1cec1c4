"""Stora create (§16, S-A13), unit types and protection levels (§17) over real HTTP."""

from __future__ import annotations

import pytest

from dealdesk.sandbox.seed_stora import API_APPLICATION_ID
from tests.sandbox.test_stora_contract import StoraApi, assert_error

PAGINATION_KEYS = {"count", "last", "limit", "next", "page", "pages", "prev"}
MONEY_KEYS = {"amount", "currency", "formatted"}


@pytest.fixture
def api(sandbox, stora_info) -> StoraApi:
    sandbox.set_rate_limiting("stora", False)
    return StoraApi(stora_info.base_url, stora_info.api_key)


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["stora"]


def a_contact(api: StoraApi) -> dict:
    return api.get("/contacts", limit=1).json()["contacts"][0]


# --- POST /2025-09/deals ------------------------------------------------------------------------


def test_create_with_name_and_contact_opens_a_deal_in_the_first_stage(api):
    contact = a_contact(api)

    response = api.post("/deals", {"name": "Unit 4 — walk-in", "contact": {"id": contact["id"]}})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"deal", "meta"} and body["meta"]["request_id"]
    deal = body["deal"]
    assert deal["id"].startswith("deal_")
    assert (deal["name"], deal["status"], deal["lost_reason"]) == ("Unit 4 — walk-in", "open", None)
    assert deal["contact"] == {"id": contact["id"]}
    assert deal["stage"] == {"id": api.stages()[0]["id"]}  # first by position (S-A13)
    assert deal["creator"] == {"id": API_APPLICATION_ID}
    assert deal["line_items"] == [] and deal["created_at"] == deal["updated_at"]
    assert {"note", "metadata"} <= set(deal)  # create answers like show
    assert api.show(deal["id"])["name"] == "Unit 4 — walk-in"


def test_create_with_stage_line_items_and_expand(api, simulator):
    contact = a_contact(api)
    stage = api.stages()[2]
    unit_type = next(iter(simulator.unit_types))
    protection = next(iter(simulator.protection_levels))
    body = {
        "name": "Container for the summer",
        "contact": {"id": contact["id"]},
        "stage": {"id": stage["id"]},
        "line_items": [
            {"type": "unit_type", "item": {"id": unit_type}},
            {"type": "protection", "item": {"id": protection}},
        ],
        "note": "Wants drive-up access",
    }

    response = api.post("/deals?expand=contact,stage", body)

    deal = response.json()["deal"]
    assert deal["contact"]["full_name"] == contact["full_name"]
    assert deal["stage"]["name"] == stage["name"]
    assert [(i["type"], i["item"]["id"], i["quantity"]) for i in deal["line_items"]] == [
        ("unit_type", unit_type, 1),
        ("protection", protection, 1),
    ]
    assert deal["note"] == "Wants drive-up access"


def test_create_without_name_and_contact_names_both_and_creates_nothing(api, simulator):
    before = len(simulator.deals)

    error = assert_error(api.post("/deals", {"note": "?"}), 422, "invalid_content")

    assert {d["pointer"] for d in error["details"]} == {"/name", "/contact"}
    assert len(simulator.deals) == before


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "x", "contact": {"id": "con_nope"}}, "/contact/id"),
        ({"name": "x", "contact": None}, "/contact"),
        ({"name": " ", "contact": "CONTACT"}, "/name"),
        ({"name": "x", "contact": "CONTACT", "stage": {"id": "dstg_nope"}}, "/stage/id"),
        (
            {"name": "x", "contact": "CONTACT", "line_items": [{"type": "unit"}]},
            "/line_items/0/type",
        ),
        ({"name": "x", "contact": "CONTACT", "value_estimate": "£5"}, "/value_estimate"),
    ],
)
def test_create_refusals_point_at_the_field(api, simulator, body, pointer):
    if body.get("contact") == "CONTACT":
        body = {**body, "contact": {"id": a_contact(api)["id"]}}
    before = len(simulator.deals)

    error = assert_error(api.post("/deals", body), 422, "invalid_content")

    assert pointer in {d["pointer"] for d in error["details"]}
    assert len(simulator.deals) == before


def test_create_with_an_idempotency_key_creates_one_deal_and_replays_it(api, simulator):
    body = {"name": "Double click", "contact": {"id": a_contact(api)["id"]}}
    before = len(simulator.deals)

    first = api.post("/deals", body, key="create-once")
    second = api.post("/deals", body, key="create-once")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(simulator.deals) == before + 1


def test_a_replayed_create_error_needs_a_new_key(api, simulator):
    refused = api.post("/deals", {"name": "x"}, key="bad-create")
    again = api.post(
        "/deals", {"name": "x", "contact": {"id": a_contact(api)["id"]}}, key="bad-create"
    )
    fresh = api.post("/deals", {"name": "x", "contact": {"id": a_contact(api)["id"]}}, key="new")

    assert refused.status_code == again.status_code == 422  # replayed for 24 h (§9)
    assert fresh.status_code == 201


# --- Unit types and protection levels (§17) -----------------------------------------------------


def test_unit_types_have_name_size_site_and_prices(api, simulator):
    body = api.get("/unit_types", limit=100).json()

    assert set(body) == {"unit_types", "meta"}
    assert set(body["meta"]["pagination"]) == PAGINATION_KEYS
    site_ids = set(simulator.sites)
    for unit_type in body["unit_types"]:
        assert unit_type["id"].startswith("utype_")
        assert unit_type["name"] and unit_type["size_description"].endswith("sq ft")
        assert unit_type["site"]["id"] in site_ids
        price = unit_type["prices"][0]
        assert price["billing_period"] and set(price["price"]) == MONEY_KEYS
        assert isinstance(price["price"]["amount"], int)


def test_protection_levels_have_a_cover_level_and_no_name(api):
    levels = api.get("/protection_levels", limit=100).json()["protection_levels"]

    assert levels
    for level in levels:
        assert level["id"].startswith("plvl_")
        assert "name" not in level
        assert set(level["cover_level"]) == MONEY_KEYS
        assert level["cover_level"]["formatted"].startswith("£")
        assert level["public"] is True and level["prices"]


def test_catalogue_lists_page_like_every_list(api):
    first = api.get("/unit_types", limit=3, page=1).json()
    second = api.get("/unit_types", limit=3, page=2).json()

    assert first["meta"]["pagination"]["next"] == 2
    ids = [u["id"] for u in first["unit_types"] + second["unit_types"]]
    assert len(ids) == len(set(ids)) == first["meta"]["pagination"]["count"]


@pytest.mark.parametrize("seed", ["demo", "large"])
def test_every_seeded_line_item_names_a_listed_unit_type_or_protection(api, sandbox, seed):
    sandbox.simulators["stora"].reset(seed)
    unit_types = {u["id"] for u in api.get("/unit_types", limit=100).json()["unit_types"]}
    levels = {p["id"] for p in api.get("/protection_levels", limit=100).json()["protection_levels"]}
    catalogue = {"unit_type": unit_types, "protection": levels}

    items = [i for d in sandbox.simulators["stora"].deals.values() for i in d["line_items"]]

    assert items
    assert all(item["item"]["id"] in catalogue[item["type"]] for item in items)
