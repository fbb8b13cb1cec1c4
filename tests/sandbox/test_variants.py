"""Sandbox variants (each ASSUMED read answered the other documented way) and id-typed list
filters validated like each vendor, over real HTTP."""

from __future__ import annotations

import pytest
import requests

from dealdesk.sandbox import DEFAULT_NODESTASH_TOKEN, DEFAULT_STORA_TOKEN


def stora(server, path: str, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {DEFAULT_STORA_TOKEN}"}
    return requests.get(f"{server.stora_url}{path}", params=params, headers=headers, timeout=5)


def nodestash(server, path: str, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {DEFAULT_NODESTASH_TOKEN}"}
    return requests.get(f"{server.nodestash_url}{path}", params=params, headers=headers, timeout=5)


def control(server, path: str, body: dict) -> requests.Response:
    return requests.post(f"{server.url}/__sandbox/{path}", json=body, timeout=5)


@pytest.mark.parametrize(
    ("param", "value"), [("pipeline_id", "xx"), ("stage_id", "pp_x"), ("company_id", "ct_1")]
)
def test_nodestash_list_refuses_a_malformed_id_filter(sandbox_server, sandbox, param, value):
    response = nodestash(sandbox_server, "/deals", limit=5, **{param: value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"][0]["field"] == param


@pytest.mark.parametrize(
    ("param", "value"),
    [("stage_id", "xx"), ("stage_id", "dstg_a,oops"), ("assignee_id", "con_1"), ("site_id", "x")],
)
def test_stora_list_refuses_a_malformed_id_filter(sandbox_server, sandbox, param, value):
    response = stora(sandbox_server, "/2025-09/deals", **{param: value})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_url_param"
    assert error["details"][0]["pointer"] == f"/{param}"


def test_well_formed_unknown_ids_still_list_nothing(sandbox_server, sandbox):
    assert nodestash(sandbox_server, "/deals", pipeline_id="pp_nope").json()["data"] == []
    assert stora(sandbox_server, "/2025-09/deals", stage_id="dstg_nope").json()["deals"] == []


def test_variants_over_http_change_the_answers_until_reset(sandbox_server, sandbox):
    response = control(sandbox_server, "variants", {"provider": "stora", "variants": ["staff_404"]})

    assert response.status_code == 200
    assert response.json()["providers"]["stora"]["variants"] == ["staff_404"]
    assert stora(sandbox_server, "/2025-09/staff").status_code == 404

    control(sandbox_server, "reset", {})
    assert stora(sandbox_server, "/2025-09/staff").status_code == 200


def test_unknown_variant_is_a_400_and_changes_nothing(sandbox_server, sandbox):
    response = control(
        sandbox_server, "variants", {"provider": "nodestash", "variants": ["staff_404"]}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_variants"
    assert sandbox.simulators["nodestash"].variants == set()


@pytest.mark.parametrize(
    ("variant", "path", "params"),
    [
        ("expand_422", "/2025-09/deals", {"expand": "assignee"}),
        ("filters_422", "/2025-09/deals", {"status": "won"}),
        ("sort_422", "/2025-09/deals", {"sort_by": "updated_at"}),
    ],
)
def test_stora_variants_refuse_the_assumed_parameter(
    sandbox_server, sandbox, variant, path, params
):
    assert stora(sandbox_server, path, **params).status_code == 200
    sandbox.set_variants("stora", [variant])

    response = stora(sandbox_server, path, **params)

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["pointer"] == "/" + next(iter(params))
    assert stora(sandbox_server, path).status_code == 200  # the rest still works


def test_nodestash_enveloped_include(sandbox_server, sandbox):
    deal_id = next(iter(sandbox.simulators["nodestash"].deals))
    sandbox.set_variants("nodestash", ["include_enveloped"])

    body = nodestash(sandbox_server, f"/deals/{deal_id}", include="stage,pipeline").json()

    stage = body["data"]["attributes"]["stage"]
    assert stage["type"] == "pipeline_stage" and stage["attributes"]["id"] == stage["id"]
    assert body["data"]["attributes"]["pipeline"]["type"] == "pipeline"


def test_nodestash_cursor_bound_to_limit(sandbox_server, sandbox):
    first = nodestash(sandbox_server, "/deals", limit=5).json()["meta"]["pagination"]
    assert nodestash(sandbox_server, "/deals", limit=7, cursor=first["next_cursor"]).ok
    sandbox.set_variants("nodestash", ["cursor_bound_to_limit"])
    bound = nodestash(sandbox_server, "/deals", limit=5).json()["meta"]["pagination"]

    refused = nodestash(sandbox_server, "/deals", limit=7, cursor=bound["next_cursor"])

    assert refused.status_code == 400
    assert refused.json()["error"]["details"][0]["field"] == "cursor"
    assert nodestash(sandbox_server, "/deals", limit=5, cursor=bound["next_cursor"]).ok
