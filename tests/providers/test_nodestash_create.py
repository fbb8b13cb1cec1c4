"""nodestash: create a deal (§19) and the contact and company details reference data keeps —
the adapter against the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dealdesk.providers.base import Money, ValidationFailed
from dealdesk.providers.nodestash import NodestashAdapter


@pytest.fixture
def adapter(nodestash_info, sandbox, settings) -> NodestashAdapter:
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    sandbox.set_rate_limiting("nodestash", False)
    return NodestashAdapter(nodestash_info)


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["nodestash"]


def writes(sandbox):
    return [r for r in sandbox.requests("nodestash") if r.method != "GET"]


def test_reference_data_keeps_contact_email_phone_and_company(adapter, simulator):
    ref = adapter.reference_data()
    raw = next(c for c in simulator.contacts.values() if c["phone"] and c["company_id"])
    contact = ref.contact(raw["id"])
    assert (contact.email, contact.phone, contact.company_id) == (
        raw["email"],
        raw["phone"],
        raw["company_id"],
    )
    company = simulator.companies[raw["company_id"]]
    place = ref.place(company["id"])
    assert (place.name, place.kind, place.website) == (
        company["name"],
        "company",
        company["domain"],
    )


def test_create_fields_are_in_nodestash_words(adapter):
    ref = adapter.reference_data()
    fields = adapter.create_fields(ref=ref)
    assert [f.label for f in fields] == [
        "Title",
        "Value",
        "Currency",
        "Pipeline and stage",
        "Contact",
        "Company",
        "Expected close date",
        "Tags",
    ]
    stage_field = next(f for f in fields if f.name == "stage")
    open_stages = {s.id for p in ref.pipelines for s in p.stages_of_type("open")}
    assert {c.value for c in stage_field.choices} == open_stages


def test_create_posts_every_field_with_the_key_and_reads_back_the_deal(adapter, sandbox, simulator):
    ref = adapter.reference_data()
    pipeline = ref.pipelines[-1]
    stage = pipeline.stages_of_type("open")[-1]
    contact = next(iter(simulator.contacts))
    company = next(iter(simulator.companies))
    sandbox.clear_log()

    deal = adapter.create_deal(
        {
            "name": "Warehouse expansion",
            "value": Decimal("7500.25"),
            "currency": "gbp",
            "stage": stage.id,
            "contact": contact,
            "company": company,
            "expected_close_date": dt.date(2027, 1, 15),
            "tags": ("expansion", "north"),
        },
        ref=ref,
        idempotency_key="nds-create-1",
    )

    (sent,) = writes(sandbox)
    assert (sent.method, sent.path) == ("POST", "/v1/deals")
    assert sent.headers["idempotency-key"] == "nds-create-1"
    assert sent.body == {
        "title": "Warehouse expansion",
        "value": 7500.25,
        "currency": "GBP",
        "pipeline_id": pipeline.id,
        "stage_id": stage.id,
        "contact_id": contact,
        "company_id": company,
        "expected_close_date": "2027-01-15",
        "tags": ["expansion", "north"],
    }
    assert deal.id in simulator.deals
    assert deal.value == Money(Decimal("7500.25"), "GBP")
    assert (deal.stage.id, deal.pipeline.id, deal.status) == (stage.id, pipeline.id, "open")
    assert deal.contact.id == contact and deal.company.id == company


def test_only_a_title_uses_the_default_pipeline_and_sends_nothing_else(adapter, sandbox):
    ref = adapter.reference_data()
    sandbox.clear_log()
    deal = adapter.create_deal({"name": "Bare"}, ref=ref, idempotency_key="nds-bare")
    (sent,) = writes(sandbox)
    assert sent.body == {"title": "Bare"}
    assert deal.status == "open" and deal.value is None


def test_a_closed_stage_is_refused_before_sending(adapter, sandbox):
    ref = adapter.reference_data()
    won = ref.pipelines[0].stages_of_type("won")[0]
    sandbox.clear_log()
    with pytest.raises(ValidationFailed) as refused:
        adapter.create_deal({"name": "x", "stage": won.id}, ref=ref, idempotency_key="k")
    assert list(refused.value.field_errors) == ["stage"]
    assert writes(sandbox) == []


def test_a_refused_title_is_named(adapter):
    ref = adapter.reference_data()
    with pytest.raises(ValidationFailed) as refused:
        adapter.create_deal({"name": "x" * 301}, ref=ref, idempotency_key="k-long")
    assert "name" in refused.value.field_errors


def test_the_same_key_twice_is_one_deal(adapter, simulator):
    ref = adapter.reference_data()
    first = adapter.create_deal({"name": "Once only"}, ref=ref, idempotency_key="nds-same")
    second = adapter.create_deal({"name": "Once only"}, ref=ref, idempotency_key="nds-same")
    assert first.id == second.id
    assert [d["title"] for d in simulator.deals.values()].count("Once only") == 1
