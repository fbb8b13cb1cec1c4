"""The Stora simulator against ../shared/api/stora.md over real HTTP: CONFIRMED and S-A1..S-A10."""

from __future__ import annotations

import calendar
import json
import time
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.sandbox.core import SandboxRequest
from dealdesk.sandbox.seed_stora import (
    API_APPLICATION_ID,
    DELETED_STAGE_NAME,
    HTML_DEAL_NAME,
    build_stora_seed,
)
from dealdesk.sandbox.stora import StoraSimulator

ERROR_KEYS = {"code", "type", "message", "request_id", "details", "links"}
PAGINATION_KEYS = {"count", "last", "limit", "next", "page", "pages", "prev"}


class StoraApi:
    """Plain ``requests`` against the sandbox, as any Stora client would call it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/") + "/2025-09"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=5)

    def patch(self, path: str, body=None, **kwargs) -> requests.Response:
        return self.session.patch(self.base_url + path, json=body, timeout=5, **kwargs)

    def post(self, path: str, body=None, *, key: str | None = None, **kwargs) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.session.post(
            self.base_url + path, json=body, headers=headers, timeout=5, **kwargs
        )

    def deals(self, **params) -> list[dict]:
        return self.get("/deals", limit=100, **params).json()["deals"]

    def deal_named(self, name: str) -> dict:
        return next(d for d in self.deals() if d["name"] == name)

    def deal_with(self, status: str) -> dict:
        return next(d for d in self.deals(status=status) if "id" in d["stage"])

    def show(self, deal_id: str, **params) -> dict:
        return self.get(f"/deals/{deal_id}", **params).json()["deal"]

    def stages(self) -> list[dict]:
        return self.get("/deals/stages", sort_by="position", sort_direction="ASC").json()["stages"]

    def staff(self) -> list[dict]:
        return self.get("/staff", limit=100).json()["staff"]


@pytest.fixture
def api(sandbox, stora_info) -> StoraApi:
    sandbox.set_rate_limiting("stora", False)  # the rate-limit tests switch it back on
    return StoraApi(stora_info.base_url, stora_info.api_key)


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == code
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert error["links"] and error["message"]
    return error


def pointers(response: requests.Response) -> set[str]:
    return {detail["pointer"] for detail in response.json()["error"]["details"]}


# --- Seed data ------------------------------------------------------------------------------


def test_demo_seed_has_forty_deals_in_every_status_with_lost_reasons(api):
    deals = api.deals()
    assert len(deals) == 40
    assert {d["status"] for d in deals} == {"open", "won", "lost"}
    assert all(d["lost_reason"] for d in deals if d["status"] == "lost")
    assert all(d["lost_reason"] is None for d in deals if d["status"] != "lost")


def test_demo_stage_positions_are_not_contiguous(api):
    positions = [stage["position"] for stage in api.stages()]
    assert len(positions) >= 5
    assert positions == sorted(positions)
    assert positions != list(range(positions[0], positions[0] + len(positions)))


def test_demo_has_a_deal_whose_stage_was_deleted_and_has_no_id(api):
    deleted = [d["stage"] for d in api.deals() if "id" not in d["stage"]]
    assert len(deleted) == 1
    assert deleted[0]["name"] == DELETED_STAGE_NAME
    assert {"position", "created_at", "updated_at"} <= set(deleted[0])


def test_demo_has_a_deal_created_by_an_api_application(api):
    creators = [d["creator"]["id"] for d in api.deals()]
    assert API_APPLICATION_ID in creators
    assert API_APPLICATION_ID.startswith("app_")


def test_demo_keeps_html_and_unicode_names_verbatim(api):
    names = {d["name"] for d in api.deals()}
    assert HTML_DEAL_NAME in names
    assert "Unit 12B — Sarah Okafor" in names
    assert any("Zoë Łukasiewicz" in name for name in names)
    assert any("株式会社ミナト" in name for name in names)


def test_demo_lookups_have_names_staff_contacts_and_sites(api):
    assert 6 <= len(api.staff()) <= 8
    contacts = api.get("/contacts", limit=100).json()["contacts"]
    assert len(contacts) >= 20 and all(c["full_name"] for c in contacts)
    sites = api.get("/sites").json()["sites"]
    assert 3 <= len(sites) <= 4 and all(s["name"] for s in sites)


def test_demo_timestamps_are_recent_relative_to_the_seeding_time(api):
    def epoch(text: str) -> float:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))

    updated = [epoch(d["updated_at"]) for d in api.deals()]
    now = time.time()
    assert now - max(updated) < 3600
    assert 7 * 86400 < now - min(updated) <= 22 * 86400
    assert all(d["updated_at"].endswith("Z") for d in api.deals())


def test_seed_is_deterministic_apart_from_the_moment_of_seeding():
    first, second = build_stora_seed("demo", now=1e9), build_stora_seed("demo", now=2e9)
    assert [d["id"] for d in first.deals] == [d["id"] for d in second.deals]
    assert [d["name"] for d in first.deals] == [d["name"] for d in second.deals]


def test_large_seed_builds_ten_thousand_deals(api, sandbox):
    sandbox.simulators["stora"].reset("large")  # its build time is in `make bench`
    assert api.get("/deals", limit=1).json()["meta"]["pagination"]["count"] == 10_000


def test_numeric_seed_builds_that_many_deals(api, sandbox):
    sandbox.simulators["stora"].reset("120")
    pagination = api.get("/deals", limit=100).json()["meta"]["pagination"]
    assert (pagination["count"], pagination["pages"], pagination["next"]) == (120, 2, 2)


# --- Lists and pagination -------------------------------------------------------------------


def test_pages_add_up_to_the_count_without_gaps_or_repeats(api):
    seen, page = [], 1
    while page is not None:
        body = api.get("/deals", page=page, limit=7).json()
        pagination = body["meta"]["pagination"]
        assert set(pagination) == PAGINATION_KEYS
        assert pagination["prev"] == (page - 1 if page > 1 else None)
        seen += [d["id"] for d in body["deals"]]
        page = pagination["next"]
    assert len(seen) == len(set(seen)) == pagination["count"] == 40
    assert pagination["pages"] == pagination["last"] == 6


def test_default_limit_is_fifty_and_a_page_past_the_end_is_empty(api):
    assert api.get("/deals").json()["meta"]["pagination"]["limit"] == 50
    body = api.get("/deals", page=9, limit=10).json()
    assert body["deals"] == []
    assert body["meta"]["pagination"]["next"] is None


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "101"),
        ("limit", "0"),
        ("limit", "ten"),
        ("page", "0"),
        ("page", "-1"),
        ("page", "1.5"),
        ("sort_by", "name"),
        ("sort_direction", "sideways"),
        ("expand", "owner"),
        ("status", "archived"),
    ],
)
def test_bad_list_parameters_are_invalid_url_param(api, param, value):
    response = api.get("/deals", **{param: value})
    assert_error(response, 422, "invalid_url_param")
    assert pointers(response) == {"/" + param}


def test_stages_list_rejects_unknown_sort_and_sorts_by_position(api):
    assert_error(api.get("/deals/stages", sort_by="name"), 422, "invalid_url_param")
    newest_first = [s["id"] for s in api.get("/deals/stages").json()["stages"]]
    by_position = [s["id"] for s in api.stages()]
    assert sorted(newest_first) == sorted(by_position)
    assert newest_first != by_position  # the default order is created_at DESC, not position


def test_deals_sort_by_updated_at_in_both_directions(api):
    descending = [d["updated_at"] for d in api.deals(sort_by="updated_at")]
    ascending = [d["updated_at"] for d in api.deals(sort_by="updated_at", sort_direction="ASC")]
    assert descending == sorted(descending, reverse=True)
    assert ascending == sorted(ascending)


def test_deals_default_sort_is_created_at_descending(api):
    created = [d["created_at"] for d in api.deals()]
    assert created == sorted(created, reverse=True)


def test_status_filter_takes_a_comma_list(api):
    closed = api.deals(status="won,lost")
    assert closed and {d["status"] for d in closed} == {"won", "lost"}
    assert len(closed) + len(api.deals(status="open")) == 40


def test_stage_filter_takes_a_comma_list_of_stage_ids(api):
    first, second = api.stages()[:2]
    rows = api.deals(stage_id=f"{first['id']},{second['id']}")
    assert rows and {d["stage"]["id"] for d in rows} == {first["id"], second["id"]}


@pytest.mark.parametrize(
    ("param", "relation"),
    [("assignee_id", "assignee"), ("contact_id", "contact"), ("site_id", "site")],
)
def test_single_id_filters_match_the_relation(api, param, relation):
    wanted = next(d[relation]["id"] for d in api.deals() if d[relation])
    rows = api.deals(**{param: wanted})
    assert rows and all(d[relation]["id"] == wanted for d in rows)


def test_search_is_a_case_insensitive_substring_of_the_name(api):
    rows = api.deals(search="sarah OKAFOR")
    assert rows and all("sarah okafor" in d["name"].lower() for d in rows)
    assert "Container 3 — 株式会社ミナト" in [d["name"] for d in api.deals(search="ミナト")]
    assert api.deals(search="no such deal") == []


def test_expand_replaces_ids_with_full_objects_in_list_and_show(api):
    row = api.get("/deals", limit=1, expand="stage,assignee").json()["deals"][0]
    assert {"id", "name", "position"} <= set(row["stage"])
    assert row["assignee"] is None or {"id", "name", "email"} <= set(row["assignee"])
    assert set(row["contact"]) == {"id"}
    deal_id = api.deal_named("Unit 12B — Sarah Okafor")["id"]
    shown = api.show(deal_id, expand="assignee,creator,contact,site,stage")
    assert shown["contact"]["full_name"] == "Sarah Okafor"
    assert shown["site"]["name"] and shown["stage"]["name"] and shown["creator"]["name"]


def test_expand_leaves_a_deleted_stage_and_an_app_creator_as_they_are(api):
    expanded = api.deals(expand="stage,creator")
    deleted = next(d for d in expanded if d["stage"].get("name") == DELETED_STAGE_NAME)
    assert "id" not in deleted["stage"]
    app = next(d for d in expanded if d["creator"]["id"].startswith("app_"))
    assert app["creator"] == {"id": API_APPLICATION_ID}


def test_list_rows_omit_note_and_metadata_which_show_includes(api):
    row = api.deals()[0]
    assert "note" not in row and "metadata" not in row
    shown = api.show(row["id"])
    assert "note" in shown and "metadata" in shown


def test_lookup_lists_and_shows_answer_in_their_envelopes(api):
    staff = api.staff()[0]
    assert set(staff) == {"id", "name", "email", "created_at", "updated_at"}
    contact = api.get("/contacts").json()["contacts"][0]
    assert api.get(f"/contacts/{contact['id']}").json()["contact"] == contact
    site = api.get("/sites").json()["sites"][0]
    assert api.get(f"/sites/{site['id']}").json()["site"] == site
    stage = api.stages()[0]
    assert api.get(f"/deals/stages/{stage['id']}").json()["stage"] == stage
    assert api.get("/contacts", sort_by="full_name").status_code == 200


def test_every_success_carries_request_id_and_curies(api):
    response = api.get("/deals/stages")
    meta = response.json()["meta"]
    assert meta["request_id"].startswith("req_")
    assert meta["request_id"] == response.headers["X-Request-Id"]
    assert [c["name"] for c in meta["curies"]] == ["bo", "sf"]


# --- Errors ---------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_invalid_token(api, stora_info):
    url = api.base_url + "/deals"
    assert_error(requests.get(url, timeout=5), 401, "invalid_token")
    wrong = {"Authorization": "Bearer nope"}
    assert_error(requests.get(url, headers=wrong, timeout=5), 401, "invalid_token")
    basic = {"Authorization": f"Basic {stora_info.api_key}"}
    assert_error(requests.get(url, headers=basic, timeout=5), 401, "invalid_token")


@pytest.mark.parametrize(
    "path",
    [
        "/deals/deal_0000000000000000",
        "/deals/dstg_wrongprefix",
        "/deals/stages/deal_wrongprefix",
        "/deals/stages/dstg_0000000000000000",
        "/contacts/site_wrongprefix",
        "/sites/site_0000000000000000",
    ],
)
def test_unknown_ids_and_ids_with_the_wrong_prefix_are_resource_not_found(api, path):
    assert_error(api.get(path), 404, "resource_not_found")


def test_unknown_paths_and_methods_are_invalid_endpoint(api):
    assert_error(api.get("/unicorns"), 404, "invalid_endpoint")
    assert_error(
        api.session.get(api.base_url.replace("2025-09", "2024-01") + "/deals"),
        404,
        "invalid_endpoint",
    )
    deal_id = api.deals()[0]["id"]
    assert_error(api.get(f"/deals/{deal_id}/win"), 404, "invalid_endpoint")
    assert_error(api.session.delete(f"{api.base_url}/deals/{deal_id}"), 404, "invalid_endpoint")


def test_unsupported_accept_is_invalid_format(api):
    response = api.session.get(api.base_url + "/deals", headers={"Accept": "text/csv"})
    assert_error(response, 406, "invalid_format")


# --- PATCH ----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent_and_bumps_updated_at(api):
    before = api.show(api.deal_with("open")["id"])
    response = api.patch(f"/deals/{before['id']}", {"name": "Unit 99 — Renamed"})
    assert response.status_code == 200
    after = response.json()["deal"]
    assert after["name"] == "Unit 99 — Renamed"
    assert after["updated_at"] > before["updated_at"]
    unchanged = {k: v for k, v in after.items() if k not in ("name", "updated_at")}
    assert unchanged == {k: v for k, v in before.items() if k not in ("name", "updated_at")}
    assert api.show(before["id"])["name"] == "Unit 99 — Renamed"


def test_patch_edits_note_move_in_date_assignee_site_and_metadata(api):
    deal_id = api.deal_with("open")["id"]
    staff_id = api.staff()[-1]["id"]
    site_id = api.get("/sites").json()["sites"][-1]["id"]
    body = {
        "note": "Quoted £55 per month incl. protection",
        "starts_at": "2025-04-01T10:00:00+01:00",
        "assignee": {"id": staff_id},
        "site": {"id": site_id},
        "metadata": {"campaign": "spring"},
    }
    deal = api.patch(f"/deals/{deal_id}", body).json()["deal"]
    assert deal["note"] == body["note"]
    assert deal["starts_at"] == "2025-04-01T09:00:00Z"  # normalised to UTC with Z
    assert deal["assignee"] == {"id": staff_id} and deal["site"] == {"id": site_id}
    assert deal["metadata"] == {"campaign": "spring"}


def test_patch_with_nulls_clears_assignee_site_note_and_move_in_date(api):
    deal_id = api.deal_with("open")["id"]
    body = {"assignee": None, "site": None, "note": None, "starts_at": None}
    deal = api.patch(f"/deals/{deal_id}", body).json()["deal"]
    assert [deal[k] for k in body] == [None, None, None, None]


def test_patch_replaces_line_items_and_allows_one_item_per_type(api):
    deal = api.show(api.deal_with("open")["id"])
    unit_type = next(i for i in deal["line_items"] if i["type"] == "unit_type")["item"]["id"]
    body = {"line_items": [{"type": "unit_type", "item": {"id": unit_type}}]}
    updated = api.patch(f"/deals/{deal['id']}", body).json()["deal"]
    assert updated["line_items"] == [
        {"item": {"id": unit_type}, "quantity": 1, "type": "unit_type"}
    ]
    assert api.patch(f"/deals/{deal['id']}", {"line_items": []}).json()["deal"]["line_items"] == []
    twice = {"line_items": body["line_items"] * 2}
    response = api.patch(f"/deals/{deal['id']}", twice)
    assert_error(response, 422, "invalid_content")
    assert pointers(response) == {"/line_items/1/type"}


def test_patch_empty_name_is_invalid_content_pointing_at_name(api):
    deal_id = api.deal_with("open")["id"]
    response = api.patch(f"/deals/{deal_id}", {"name": "   "})
    error = assert_error(response, 422, "invalid_content")
    assert error["details"] == [
        {"message": "value at `/name` must not be empty", "pointer": "/name"}
    ]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": 123}, "/name"),
        ({"note": ["x"]}, "/note"),
        ({"starts_at": "2025-04-01"}, "/starts_at"),
        ({"starts_at": 20250401}, "/starts_at"),
        ({"metadata": "x"}, "/metadata"),
        ({"assignee": "staff_x"}, "/assignee"),
        ({"assignee": {"id": 7}}, "/assignee/id"),
        ({"assignee": {"id": "staff_0000000000000000"}}, "/assignee/id"),
        ({"site": {"id": "site_0000000000000000"}}, "/site/id"),
        ({"stage": {"id": "dstg_0000000000000000"}}, "/stage/id"),
        ({"stage": None}, "/stage"),
        ({"line_items": {"type": "unit_type"}}, "/line_items"),
        (
            {"line_items": [{"type": "unit_type", "item": {"id": "utype_nope"}}]},
            "/line_items/0/item/id",
        ),
        ({"status": "won"}, "/status"),
        ({"value_estimate": "£1"}, "/value_estimate"),
    ],
)
def test_patch_rejects_wrong_types_and_unknown_ids_without_changing_the_deal(api, body, pointer):
    before = api.show(api.deal_with("open")["id"])
    response = api.patch(f"/deals/{before['id']}", {"name": "Should not stick", **body})
    assert_error(response, 422, "invalid_content")
    assert pointers(response) == {pointer}
    assert api.show(before["id"]) == before


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"name"', b"42", b"nul"])
def test_patch_with_a_body_that_is_not_a_json_object_is_invalid_request(api, raw):
    deal_id = api.deal_with("open")["id"]
    response = api.session.patch(
        f"{api.base_url}/deals/{deal_id}",
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_request")


def test_patch_stage_moves_an_open_deal(api):
    deal = api.deal_with("open")
    target = next(s for s in api.stages() if s["id"] != deal["stage"]["id"])
    moved = api.patch(f"/deals/{deal['id']}", {"stage": {"id": target["id"]}}).json()["deal"]
    assert moved["stage"] == {"id": target["id"]}


@pytest.mark.parametrize("status", ["won", "lost"])
def test_patch_stage_on_a_closed_deal_is_a_conflict(api, status):
    deal = api.deal_with(status)
    response = api.patch(f"/deals/{deal['id']}", {"stage": {"id": api.stages()[0]["id"]}})
    assert_error(response, 409, "conflict")
    assert api.show(deal["id"])["stage"] == deal["stage"]


def test_patch_on_a_closed_deal_still_edits_other_fields(api):
    deal = api.deal_with("won")
    assert api.patch(f"/deals/{deal['id']}", {"note": "Paid"}).json()["deal"]["note"] == "Paid"


def test_patch_of_an_unknown_deal_is_resource_not_found(api):
    assert_error(
        api.patch("/deals/deal_0000000000000000", {"name": "x"}), 404, "resource_not_found"
    )


# --- win / lose / reopen --------------------------------------------------------------------


def test_win_closes_an_open_deal_and_keeps_its_stage(api):
    deal = api.deal_with("open")
    won = api.post(f"/deals/{deal['id']}/win").json()["deal"]
    assert won["status"] == "won" and won["stage"] == deal["stage"]
    assert won["updated_at"] > deal["updated_at"]
    assert "note" not in won  # as in Stora's win example


@pytest.mark.parametrize("status", ["won", "lost"])
def test_win_or_lose_on_a_closed_deal_is_a_conflict(api, status):
    deal_id = api.deal_with(status)["id"]
    assert_error(api.post(f"/deals/{deal_id}/win"), 409, "conflict")
    assert_error(
        api.post(f"/deals/{deal_id}/lose", {"lost_reason": "price_concerns"}), 409, "conflict"
    )


def test_lose_records_the_reason_that_was_sent(api):
    deal_id = api.deal_with("open")["id"]
    lost = api.post(f"/deals/{deal_id}/lose", {"lost_reason": "accessibility_concern"})
    assert lost.json()["deal"]["status"] == "lost"
    assert lost.json()["deal"]["lost_reason"] == "accessibility_concern"


@pytest.mark.parametrize(
    "body", [None, {}, {"lost_reason": None}, {"lost_reason": "too_pricey"}, {"lost_reason": 3}]
)
def test_lose_without_a_known_reason_is_invalid_content_at_lost_reason(api, body):
    deal = api.deal_with("open")
    response = api.post(f"/deals/{deal['id']}/lose", body)
    assert_error(response, 422, "invalid_content")
    assert pointers(response) == {"/lost_reason"}
    assert api.show(deal["id"])["status"] == "open"


def test_reopen_without_a_body_goes_to_the_first_stage_and_clears_the_reason(api):
    deal = api.deal_with("lost")
    reopened = api.post(f"/deals/{deal['id']}/reopen").json()["deal"]
    assert reopened["status"] == "open"
    assert reopened["lost_reason"] is None
    assert reopened["stage"] == {"id": api.stages()[0]["id"]}  # lowest position (S-A8)
    assert reopened["assignee"] == deal["assignee"]


def test_reopen_moves_to_the_stage_and_assignee_sent(api):
    deal = api.deal_with("won")
    stage, staff = api.stages()[-1], api.staff()[0]
    body = {"stage": {"id": stage["id"]}, "assignee": {"id": staff["id"]}}
    reopened = api.post(f"/deals/{deal['id']}/reopen", body, params={"expand": "stage"}).json()
    assert reopened["deal"]["stage"]["name"] == stage["name"]
    assert reopened["deal"]["assignee"] == {"id": staff["id"]}


def test_reopen_an_open_deal_is_a_conflict_and_unknown_ids_are_invalid(api):
    open_id, won_id = api.deal_with("open")["id"], api.deal_with("won")["id"]
    assert_error(api.post(f"/deals/{open_id}/reopen"), 409, "conflict")
    response = api.post(f"/deals/{won_id}/reopen", {"stage": {"id": "dstg_0000000000000000"}})
    assert_error(response, 422, "invalid_content")
    assert pointers(response) == {"/stage/id"}
    assert_error(api.post(f"/deals/{won_id}/reopen", [1]), 400, "invalid_request")


def test_a_deal_in_a_deleted_stage_can_be_won_and_reopened(api):
    deal = next(d for d in api.deals() if "id" not in d["stage"])
    won = api.post(f"/deals/{deal['id']}/win").json()["deal"]
    assert won["stage"] == deal["stage"]
    reopened = api.post(f"/deals/{deal['id']}/reopen").json()["deal"]
    assert reopened["stage"] == {"id": api.stages()[0]["id"]}


# --- Idempotency ----------------------------------------------------------------------------


def test_same_idempotency_key_replays_the_first_response_and_acts_once(api, sandbox):
    deal_id = api.deal_with("open")["id"]
    key = str(uuid.uuid4())
    first = api.post(f"/deals/{deal_id}/win", key=key)
    sandbox.mutate_deal("stora", deal_id, {"status": "open"})
    replay = api.post(f"/deals/{deal_id}/win", key=key)
    assert replay.status_code == first.status_code == 200
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert api.show(deal_id)["status"] == "open"  # the replay did not win it again


def test_a_replayed_error_stays_an_error_and_a_new_key_acts_again(api):
    deal_id = api.deal_with("open")["id"]
    key = str(uuid.uuid4())
    refused = api.post(f"/deals/{deal_id}/lose", {"lost_reason": "bogus"}, key=key)
    assert_error(refused, 422, "invalid_content")
    replay = api.post(f"/deals/{deal_id}/lose", {"lost_reason": "price_concerns"}, key=key)
    assert replay.status_code == 422 and replay.json() == refused.json()
    fresh = api.post(f"/deals/{deal_id}/lose", {"lost_reason": "price_concerns"}, key="new-key")
    assert fresh.status_code == 200 and fresh.json()["deal"]["lost_reason"] == "price_concerns"


def test_posts_without_a_key_act_every_time(api):
    deal_id = api.deal_with("open")["id"]
    assert api.post(f"/deals/{deal_id}/win").status_code == 200
    assert_error(api.post(f"/deals/{deal_id}/win"), 409, "conflict")


def test_idempotency_keys_expire_after_a_day():
    clock = FakeClock()
    sim = StoraSimulator("t", clock=clock)
    sim.rate_limiting = False
    deal_id = next(d for d in sim.deals.values() if d["status"] == "open")["id"]
    win = {"authorization": "Bearer t", "idempotency-key": "k"}
    assert call(sim, "POST", f"/2025-09/deals/{deal_id}/win", headers=win).status == 200
    sim.mutate_deal(deal_id, {"status": "open"})
    clock.now += 24 * 3600 + 1
    assert call(sim, "POST", f"/2025-09/deals/{deal_id}/win", headers=win).status == 200
    assert sim.deals[deal_id]["status"] == "won"


# --- Rate limits ----------------------------------------------------------------------------


def test_eleven_quick_requests_get_a_429_with_ratelimit_headers(api, sandbox):
    sandbox.set_rate_limiting("stora", True)
    statuses = [api.get("/deals/stages", limit=1) for _ in range(11)]
    assert [r.status_code for r in statuses[:10]] == [200] * 10
    limited = statuses[10]
    assert_error(limited, 429, "too_many_requests")
    assert limited.headers["RateLimit-Limit"] == "10"
    reset = int(limited.headers["RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + 2
    assert "Retry-After" not in limited.headers


def test_rate_limiting_off_lets_every_request_through(api):
    assert {api.get("/staff").status_code for _ in range(12)} == {200}


def test_sixty_requests_a_minute_per_token_then_429_until_the_window_resets():
    clock = FakeClock()
    sim = StoraSimulator("t", clock=clock)
    statuses = []
    for _ in range(61):
        statuses.append(call(sim, "GET", "/2025-09/staff").status)
        clock.now += 0.2  # 5 per second: under the per-second limit
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429
    limited = call(sim, "GET", "/2025-09/staff")
    assert limited.headers["RateLimit-Limit"] == "60"
    clock.now = int(limited.headers["RateLimit-Reset"]) + 0.01
    assert call(sim, "GET", "/2025-09/staff").status == 200


# --- Other users' changes and robustness -----------------------------------------------------


def test_mutate_deal_applies_raw_changes_and_moves_updated_at_forward(api, sandbox):
    deal = api.deal_with("open")
    raw = sandbox.mutate_deal("stora", deal["id"], {"name": "Changed elsewhere"})
    assert raw["name"] == "Changed elsewhere"
    assert raw["updated_at"] > deal["updated_at"]
    again = sandbox.mutate_deal("stora", deal["id"], {"status": "archived"})
    assert again["updated_at"] > raw["updated_at"]  # at least a second later, even at once
    assert api.show(deal["id"])["status"] == "archived"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_760_000_000.0

    def __call__(self) -> float:
        return self.now


def call(sim, method, path, *, body: bytes = b"", headers=None):
    headers = headers or {"authorization": "Bearer t"}
    return sim.handle(SandboxRequest(method, path, {}, headers, body))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "note",
                    "stage",
                    "assignee",
                    "site",
                    "id",
                    "line_items",
                    "metadata",
                    "starts_at",
                    "lost_reason",
                    "item",
                    "type",
                    "quantity",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=JSON, action=st.sampled_from(["", "/win", "/lose", "/reopen"]))
def test_any_json_body_gets_a_stora_answer_and_a_refusal_changes_nothing(body, action):
    sim = StoraSimulator("t")
    sim.rate_limiting = False
    deal_id = next(iter(sim.deals))
    before = json.dumps(sim.deals, sort_keys=True)
    method = "PATCH" if action == "" else "POST"
    response = call(
        sim, method, f"/2025-09/deals/{deal_id}{action}", body=json.dumps(body).encode()
    )
    assert response.status in (200, 400, 409, 422), response.body
    if response.status != 200:
        assert response.body["error"]["code"] in ("invalid_request", "invalid_content", "conflict")
        assert json.dumps(sim.deals, sort_keys=True) == before
