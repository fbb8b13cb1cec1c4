"""Arbitrary upstream JSON through each adapter's parsers: every body either becomes a ``Deal``
(that the detail page can offer fields and actions for) or is refused with a ``ProviderError``
in plain words. Nothing else escapes: no KeyError, TypeError, ValueError or crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealdesk.providers.base import (
    ConnectionInfo,
    Deal,
    Pipeline,
    ProviderError,
    ReferenceData,
    Stage,
)
from dealdesk.providers.http import ApiResponse
from dealdesk.providers.nodestash import NodestashAdapter
from dealdesk.providers.nodestash import map_error as map_nodestash_error
from dealdesk.providers.stora import StoraAdapter, map_stora_error

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STORA = StoraAdapter(ConnectionInfo("stora", "Stora", "stora", "http://127.0.0.1:9", "k" * 20))
NODESTASH = NodestashAdapter(
    ConnectionInfo("nodestash", "nodestash", "nodestash", "http://127.0.0.1:9", "nds_test_x")
)
REF = ReferenceData(
    pipelines=(
        Pipeline("stora", "Stora", (Stage("dstg_1", "New", 1),)),
        Pipeline("pl_1", "Sales", (Stage("ps_1", "Open", 1, "open", "pl_1"),)),
    ),
    names={"cus_1": "Ada", "ct_1": "Grace"},
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["open", "won", "lost", "2025-01-31", "2025-01-31T10:00:00Z", "1e999", "id"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def shaped(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict holding some of the vendor's real keys, each with any JSON value."""
    return st.fixed_dictionaries({}, optional={key: json_values for key in keys})


STORA_DEAL_KEYS = [
    "id",
    "name",
    "status",
    "stage",
    "value_estimate",
    "assignee",
    "creator",
    "contact",
    "site",
    "starts_at",
    "note",
    "metadata",
    "line_items",
    "lost_reason",
    "created_at",
    "updated_at",
]
NODESTASH_DEAL_KEYS = [
    "id",
    "title",
    "pipeline_id",
    "stage_id",
    "value",
    "currency",
    "contact_id",
    "company_id",
    "expected_close_date",
    "tags",
    "custom_fields",
    "closed_at",
    "created_at",
    "updated_at",
    "contact",
    "company",
    "pipeline",
    "stage",
]
stora_deals = st.one_of(shaped(STORA_DEAL_KEYS), json_values)
nodestash_deals = st.one_of(shaped(NODESTASH_DEAL_KEYS), json_values)


def check_deal(adapter, deal: Deal) -> None:
    assert isinstance(deal, Deal)
    assert isinstance(deal.name, str) and isinstance(deal.status, str)
    adapter.editable_fields(deal, ref=REF)
    adapter.actions(deal, ref=REF)
    str(deal.status_label), str(deal.lost_reason_label)


def parses_or_refuses(parse) -> None:
    try:
        result = parse()
    except ProviderError as error:
        assert error.message.strip()
        return
    return result


@FAST
@given(
    body=st.one_of(
        st.fixed_dictionaries({"deal": stora_deals}),
        st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    )
)
def test_stora_deal_bodies_parse_or_are_refused(body):
    """Any JSON object (a body that is no object is refused before this, in ``_get``)."""
    deal = parses_or_refuses(
        lambda: STORA._deal_from(ApiResponse(200, body, {}, ""), ref=REF, deal_id="deal_x")
    )
    if deal is not None:
        check_deal(STORA, deal)


@FAST
@given(row=stora_deals)
def test_stora_list_rows_parse(row):
    if isinstance(row, dict):
        check_deal(STORA, STORA.parse_deal(row, ref=REF))


@FAST
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"data": st.one_of(st.fixed_dictionaries({"attributes": nodestash_deals}), json_values)}
        ),
        json_values,
    )
)
def test_nodestash_deal_bodies_parse_or_are_refused(body):
    def parse():
        attributes = NODESTASH._one(ApiResponse(200, body, {}, ""))
        return NODESTASH._deal(attributes, REF, embedded=True)

    deal = parses_or_refuses(parse)
    if deal is not None:
        check_deal(NODESTASH, deal)


@FAST
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {
                "data": st.lists(st.fixed_dictionaries({"attributes": nodestash_deals})),
                "meta": json_values,
            }
        ),
        json_values,
    )
)
def test_nodestash_deal_lists_parse_or_are_refused(body):
    def parse():
        items, _cursor = NODESTASH._many(ApiResponse(200, body, {}, ""))
        return [NODESTASH._deal(item, REF) for item in items]

    for deal in parses_or_refuses(parse) or []:
        check_deal(NODESTASH, deal)


error_bodies = st.one_of(
    st.fixed_dictionaries(
        {"error": st.one_of(shaped(["code", "message", "details", "retry_after"]), json_values)}
    ),
    json_values,
)
headers = st.dictionaries(
    st.sampled_from(["RateLimit-Reset", "Retry-After", "X-Other"]),
    st.one_of(st.text(max_size=12), st.integers().map(str)),
)


@FAST
@given(status=st.integers(min_value=400, max_value=599), body=error_bodies, headers=headers)
def test_error_bodies_always_map_to_a_provider_error_in_plain_words(status, body, headers):
    for mapper in (map_stora_error, map_nodestash_error):
        error = mapper(status, body, headers, "req_1")
        assert isinstance(error, ProviderError)
        assert error.message.strip()
        if hasattr(error, "field_errors"):
            assert all(isinstance(m, str) for ms in error.field_errors.values() for m in ms)
        if getattr(error, "retry_after", None) is not None:
            assert error.retry_after >= 0
