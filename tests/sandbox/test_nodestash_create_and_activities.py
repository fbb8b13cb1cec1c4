"""nodestash create (§19) and activities (§20) over real HTTP, as nodestash.md describes them."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN
from tests.sandbox.test_nodestash_contract import assert_error, open_deal, pipeline_named, stage_of


@pytest.fixture(autouse=True)
def no_rate_limit(sandbox):
    sandbox.set_rate_limiting("nodestash", False)  # the rate-limit test turns it back on


@pytest.fixture
def api(nodestash_info):
    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}",
            **kwargs.pop("headers", {}),
        }
        return requests.request(
            method, nodestash_info.base_url + path, headers=headers, timeout=5, **kwargs
        )

    return call


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["nodestash"]


ACTIVITY_KEYS = {
    "id",
    "type",
    "subject",
    "body",
    "contact_id",
    "company_id",
    "deal_id",
    "owner_id",
    "is_done",
    "due_date",
    "completed_at",
    "metadata",
    "tags",
    "created_at",
    "updated_at",
}


def walk(api, path: str, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = api("GET", path, params=query).json()
        items += [item["attributes"] for item in body["data"]]
        cursor = body["meta"]["pagination"]["next_cursor"]
        if not cursor:
            return items


# --- POST /deals --------------------------------------------------------------------------------


def test_create_with_only_a_title_uses_the_default_pipeline_and_its_first_open_stage(
    api, simulator
):
    response = api("POST", "/deals", json={"title": "Inbound lead"})

    assert response.status_code == 201
    body = response.json()
    assert body["data"]["type"] == "deal"
    deal = body["data"]["attributes"]
    default = next(p for p in simulator.pipelines.values() if p["is_default"])
    assert deal["pipeline_id"] == default["id"]
    assert deal["stage_id"] == stage_of(default, "open")["id"]
    assert (deal["currency"], deal["value"], deal["closed_at"]) == ("EUR", None, None)
    assert deal["created_at"] == deal["updated_at"]
    assert deal["id"].startswith("dl_")
    assert api("GET", f"/deals/{deal['id']}").json()["data"]["attributes"] == deal


def test_create_with_every_field(api, simulator):
    partners = pipeline_named(simulator, "Partnerships")
    contact = next(iter(simulator.contacts.values()))
    body = {
        "title": "Reseller deal",
        "value": 1234.5,
        "currency": "usd",
        "pipeline_id": partners["id"],
        "stage_id": stage_of(partners, "open", 1)["id"],
        "contact_id": contact["id"],
        "company_id": contact["company_id"],
        "expected_close_date": "2027-01-31",
        "tags": ["reseller"],
        "custom_fields": {"priority": "high"},
        "owner_id": "usr_ignored",
    }

    deal = api("POST", "/deals", json=body).json()["data"]["attributes"]

    assert deal["value"] == "1234.50"
    assert deal["currency"] == "USD"
    assert {k: deal[k] for k in ("pipeline_id", "stage_id", "contact_id", "company_id")} == {
        k: body[k] for k in ("pipeline_id", "stage_id", "contact_id", "company_id")
    }
    assert (deal["tags"], deal["custom_fields"], deal["owner_id"]) == (
        ["reseller"],
        {"priority": "high"},
        None,
    )


def test_create_in_a_won_stage_sets_closed_at(api, simulator):
    sales = pipeline_named(simulator, "Sales")

    deal = api("POST", "/deals", json={"title": "Done", "stage_id": stage_of(sales, "won")["id"]})

    assert deal.json()["data"]["attributes"]["closed_at"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "title"),
        ({"title": "  "}, 400, "title"),
        ({"title": "x", "value": "12"}, 400, "value"),
        ({"title": "x", "stage_id": "ps_nope"}, 400, "stage_id"),
        ({"title": "x", "pipeline_id": 7}, 400, "pipeline_id"),
        ({"title": "x", "contact_id": "ct_nope"}, 422, None),
        ({"title": "x", "pipeline_id": "pp_nope"}, 422, None),
    ],
)
def test_create_refusals_create_nothing(api, simulator, body, status, field):
    before = len(simulator.deals)

    response = api("POST", "/deals", json=body)

    error = assert_error(
        response, status, "VALIDATION_ERROR" if status == 400 else "UNPROCESSABLE_ENTITY"
    )
    if field:
        assert field in {d["field"] for d in error["details"]}
    assert len(simulator.deals) == before


def test_a_stage_of_another_pipeline_is_refused_on_create(api, simulator):
    partners = pipeline_named(simulator, "Partnerships")

    response = api("POST", "/deals", json={"title": "x", "stage_id": partners["stages"][0]["id"]})

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"][0]["field"] == "stage_id"


def test_create_with_an_idempotency_key_creates_one_deal(api, simulator):
    before = len(simulator.deals)
    headers = {"Idempotency-Key": "create-1"}

    first = api("POST", "/deals", json={"title": "Once"}, headers=headers)
    second = api("POST", "/deals", json={"title": "Once"}, headers=headers)
    other = api("POST", "/deals", json={"title": "Twice"}, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert_error(other, 409, "CONFLICT")
    assert len(simulator.deals) == before + 1


# --- Activities: seed ---------------------------------------------------------------------------


def test_demo_deals_have_overdue_due_today_and_no_next_step(simulator):
    today = dt.datetime.now(dt.UTC).date().isoformat()
    open_stages = {
        s["id"] for p in simulator.pipelines.values() for s in p["stages"] if s["type"] == "open"
    }
    open_deals = [d["id"] for d in simulator.deals.values() if d["stage_id"] in open_stages]
    open_tasks: dict[str, list[dict[str, Any]]] = {}
    for activity in simulator.activities.values():
        if not activity["is_done"] and activity["due_date"]:
            open_tasks.setdefault(activity["deal_id"], []).append(activity)
    dues = [a["due_date"] for tasks in open_tasks.values() for a in tasks]

    assert any(due < today for due in dues)  # overdue
    assert today in dues
    assert any(due > today for due in dues)  # planned
    assert len([d for d in open_deals if d not in open_tasks]) >= 5  # no next step
    kinds = {a["type"] for a in simulator.activities.values()}
    assert {"note", "task", "call", "meeting"} <= kinds
    assert all(set(a) == ACTIVITY_KEYS for a in simulator.activities.values())
    assert {a["deal_id"] for a in simulator.activities.values()} <= set(simulator.deals)


# --- GET /activities ----------------------------------------------------------------------------


def test_activities_page_25_at_a_time_by_default_newest_first(api, simulator):
    body = api("GET", "/activities").json()

    assert len(body["data"]) == 25
    assert body["data"][0]["type"] == "activity"
    everything = walk(api, "/activities", limit=10)
    assert len(everything) == len(simulator.activities)
    stamps = [a["created_at"] for a in everything]
    assert stamps == sorted(stamps, reverse=True)


def test_activities_filter_by_deal_type_and_done(api, simulator):
    deal_id = next(a["deal_id"] for a in simulator.activities.values() if a["type"] == "task")

    of_deal = walk(api, "/activities", deal_id=deal_id, limit=100)
    tasks = walk(api, "/activities", type="task", is_done="false", limit=100)
    done = walk(api, "/activities", is_done="true", limit=100)

    assert of_deal and {a["deal_id"] for a in of_deal} == {deal_id}
    assert tasks and all(a["type"] == "task" and not a["is_done"] for a in tasks)
    assert done and all(a["is_done"] and a["completed_at"] for a in done)
    expected = sum(a["deal_id"] == deal_id for a in simulator.activities.values())
    assert len(of_deal) == expected


def test_activities_sort_by_due_date_puts_undated_last(api):
    activities = walk(api, "/activities", sort="due_date", limit=100)

    dated = [a["due_date"] for a in activities if a["due_date"]]
    assert dated == sorted(dated)
    assert activities[-1]["due_date"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"is_done": "yes"}, "is_done"), ({"sort": "subject"}, "sort"), ({"limit": "101"}, "limit")],
)
def test_bad_activity_list_parameters_are_refused(api, params, field):
    error = assert_error(api("GET", "/activities", params=params), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == field


def test_a_cursor_only_follows_the_same_filters(api, simulator):
    first = api("GET", "/activities", params={"limit": 2, "type": "note"}).json()
    cursor = first["meta"]["pagination"]["next_cursor"]

    response = api("GET", "/activities", params={"limit": 2, "type": "task", "cursor": cursor})

    assert_error(response, 400, "VALIDATION_ERROR")


# --- POST, PATCH, DELETE /activities ------------------------------------------------------------


def test_add_a_task_to_a_deal_then_mark_it_done(api, simulator):
    deal = open_deal(simulator)
    body = {"type": "task", "subject": "Call back", "deal_id": deal["id"], "due_date": "2027-02-01"}

    created = api("POST", "/activities", json=body)

    assert created.status_code == 201
    task = created.json()["data"]["attributes"]
    assert set(task) == ACTIVITY_KEYS
    assert task["id"].startswith("act_")
    assert (task["is_done"], task["completed_at"], task["due_date"]) == (False, None, "2027-02-01")
    assert task["created_at"] == task["updated_at"]

    done = api("PATCH", f"/activities/{task['id']}", json={"is_done": True}).json()
    finished = done["data"]["attributes"]
    assert finished["is_done"] is True
    assert finished["completed_at"] == finished["updated_at"] > task["updated_at"]
    assert finished["subject"] == "Call back"  # partial (N-A9)

    undone = api("PATCH", f"/activities/{task['id']}", json={"is_done": False}).json()
    assert undone["data"]["attributes"]["completed_at"] is None
    listed = walk(api, "/activities", deal_id=deal["id"], limit=100)
    assert task["id"] in {a["id"] for a in listed}


def test_a_note_created_done_is_completed_at_once(api):
    created = api(
        "POST", "/activities", json={"type": "note", "subject": "Met at expo", "is_done": True}
    ).json()["data"]["attributes"]

    assert created["completed_at"] == created["created_at"]


def test_a_date_time_due_date_is_kept_in_utc(api):
    created = api(
        "POST",
        "/activities",
        json={"type": "meeting", "subject": "Demo", "due_date": "2027-03-01T10:00:00+01:00"},
    ).json()["data"]["attributes"]

    assert created["due_date"] == "2027-03-01T09:00:00Z"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"type": "task"}, 400, "subject"),
        ({"subject": "x"}, 400, "type"),
        ({"type": "fax", "subject": "x"}, 400, "type"),
        ({"type": "task", "subject": "x", "due_date": "tomorrow"}, 400, "due_date"),
        ({"type": "task", "subject": "x", "is_done": "yes"}, 400, "is_done"),
        ({"type": "task", "subject": "x", "tags": "a"}, 400, "tags"),
        ({"type": "task", "subject": "x", "deal_id": "dl_nope"}, 422, None),
    ],
)
def test_activity_refusals_create_nothing(api, simulator, body, status, field):
    before = len(simulator.activities)

    response = api("POST", "/activities", json=body)

    error = assert_error(
        response, status, "VALIDATION_ERROR" if status == 400 else "UNPROCESSABLE_ENTITY"
    )
    if field:
        assert field in {d["field"] for d in error["details"]}
    assert len(simulator.activities) == before


def test_a_refused_patch_changes_nothing(api, simulator):
    activity = next(iter(simulator.activities.values()))
    before = dict(activity)

    response = api("PATCH", f"/activities/{activity['id']}", json={"subject": "", "is_done": True})

    assert_error(response, 400, "VALIDATION_ERROR")
    assert simulator.activities[activity["id"]] == before


def test_delete_an_activity(api, simulator):
    activity = next(iter(simulator.activities.values()))

    response = api("DELETE", f"/activities/{activity['id']}")

    assert (response.status_code, response.content) == (204, b"")
    assert_error(api("GET", f"/activities/{activity['id']}"), 404, "NOT_FOUND")
    assert_error(api("DELETE", f"/activities/{activity['id']}"), 404, "NOT_FOUND")
    assert_error(api("GET", "/activities/nope"), 404, "NOT_FOUND")


def test_activity_create_with_an_idempotency_key_is_replayed(api, simulator):
    before = len(simulator.activities)
    headers = {"Idempotency-Key": "note-1"}
    body = {"type": "note", "subject": "Once"}

    first = api("POST", "/activities", json=body, headers=headers)
    second = api("POST", "/activities", json=body, headers=headers)

    assert second.json() == first.json()
    assert len(simulator.activities) == before + 1


def test_activities_count_against_the_burst_limit(api, sandbox):
    sandbox.set_rate_limiting("nodestash", True)
    time.sleep(1 - time.time() % 1 + 0.01)

    statuses = [api("GET", "/activities?limit=1").status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]
