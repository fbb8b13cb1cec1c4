"""Stora: create a deal (§16), names for line items (§17) and replacing them, contact details
and the Backoffice link from the ``bo`` curie — the adapter against the sandbox over real HTTP."""

from __future__ import annotations

import pytest

from dealdesk.providers.assumptions import FELL_BACK, HELD
from dealdesk.providers.base import Deal, ReferenceData, ValidationFailed
from dealdesk.providers.stora import S_A13_CREATE_REQUIRED, StoraAdapter


@pytest.fixture
def adapter(stora_info, sandbox, settings) -> StoraAdapter:
    settings.DEALDESK_CLIENT_RATE_LIMITS = False
    sandbox.set_rate_limiting("stora", False)
    return StoraAdapter(stora_info)


@pytest.fixture
def simulator(sandbox):
    return sandbox.simulators["stora"]


def writes(sandbox):
    return [r for r in sandbox.requests("stora") if r.method != "GET"]


def test_reference_data_names_unit_types_with_size_and_protection_by_cover(adapter, simulator):
    ref = adapter.reference_data()
    unit_types = {item.id: item for item in ref.catalogue_of("unit_type")}
    for raw in simulator.unit_types.values():
        assert unit_types[raw["id"]].name == raw["name"]
        assert unit_types[raw["id"]].detail == raw["size_description"]
    for raw in simulator.protection_levels.values():
        (item,) = [i for i in ref.catalogue_of("protection") if i.id == raw["id"]]
        assert item.name == "Cover " + raw["cover_level"]["formatted"]


def test_reference_data_keeps_contact_email_phone_and_site_address(adapter, simulator):
    ref = adapter.reference_data()
    raw = next(c for c in simulator.contacts.values() if c["phone_number"])
    contact = ref.contact(raw["id"])
    assert (contact.name, contact.email, contact.phone) == (
        raw["full_name"],
        raw["email"],
        raw["phone_number"],
    )
    site = next(iter(simulator.sites.values()))
    address = site["address"]
    assert ref.place(site["id"]).address == (
        f"{address['line_1']}, {address['city']} {address['postal_code']}"
    )
    assert ref.place(site["id"]).kind == "site"


def test_the_backoffice_link_is_the_bo_curie_with_the_deal_path(adapter, simulator):
    ref = adapter.reference_data()
    assert ref.link_templates["bo"] == "https://app.stora.test{rel}"
    deal = adapter.get_deal(next(iter(simulator.deals)), ref=ref)
    (link,) = adapter.deal_links(deal, ref=ref)
    assert link.url == f"https://app.stora.test/deals/{deal.id}"
    assert "Backoffice" in link.label


@pytest.mark.parametrize(
    "template",
    [
        "http://app.stora.test{rel}",  # not https
        "javascript:alert(1)//{rel}",
        "https://app.stora.test@evil.example{rel}",  # credentials trick
        "https://{rel}",  # no host of its own
        "https://app.stora.test{rel}?next=https://evil.example",
        "https://app.stora.test/{rel}/{rel}",
    ],
)
def test_an_unsafe_backoffice_template_gives_no_link(adapter, simulator, template):
    ref = adapter.reference_data()
    unsafe = ReferenceData(pipelines=ref.pipelines, link_templates={"bo": template})
    deal = adapter.get_deal(next(iter(simulator.deals)), ref=ref)
    assert adapter.deal_links(deal, ref=unsafe) == ()


def test_create_fields_are_in_storas_words(adapter):
    ref = adapter.reference_data()
    fields = adapter.create_fields(ref=ref)
    assert [(f.name, f.label) for f in fields] == [
        ("name", "Name"),
        ("contact", "Contact"),
        ("stage", "Stage"),
        ("unit_type", "Unit type"),
        ("protection", "Protection"),
    ]
    assert {f.name for f in fields if f.required} >= set(S_A13_CREATE_REQUIRED)
    assert fields[1].lookup == "contact"
    assert fields[2].value == ref.pipelines[0].ordered_stages()[0].id


def test_create_posts_name_contact_stage_and_line_items_with_the_key(adapter, sandbox, simulator):
    ref = adapter.reference_data()
    contact = next(iter(simulator.contacts))
    stage = ref.pipelines[0].ordered_stages()[1].id
    unit_type = next(i.id for i in ref.catalogue_of("unit_type"))
    protection = next(i.id for i in ref.catalogue_of("protection"))
    sandbox.clear_log()

    deal = adapter.create_deal(
        {
            "name": " Two lockers ",
            "contact": contact,
            "stage": stage,
            "unit_type": unit_type,
            "protection": protection,
        },
        ref=ref,
        idempotency_key="create-key-1",
    )

    (sent,) = writes(sandbox)
    assert (sent.method, sent.path) == ("POST", "/2025-09/deals")
    assert sent.headers["idempotency-key"] == "create-key-1"
    assert sent.body == {
        "name": "Two lockers",
        "contact": {"id": contact},
        "stage": {"id": stage},
        "line_items": [
            {"type": "unit_type", "item": {"id": unit_type}},
            {"type": "protection", "item": {"id": protection}},
        ],
    }
    assert isinstance(deal, Deal) and deal.id in simulator.deals
    assert (deal.name, deal.status, deal.stage.id) == ("Two lockers", "open", stage)
    assert deal.contact.name == simulator.contacts[contact]["full_name"]
    assert deal.creator.name == "API"


def test_the_same_key_twice_is_one_deal(adapter, simulator):
    ref = adapter.reference_data()
    values = {"name": "Once", "contact": next(iter(simulator.contacts))}
    first = adapter.create_deal(values, ref=ref, idempotency_key="same-key")
    second = adapter.create_deal(values, ref=ref, idempotency_key="same-key")
    assert first.id == second.id
    assert [d["name"] for d in simulator.deals.values()].count("Once") == 1


def test_a_refused_create_names_the_fields(adapter):
    ref = adapter.reference_data()
    with pytest.raises(ValidationFailed) as refused:
        adapter.create_deal({"name": "No contact"}, ref=ref, idempotency_key="k-missing")
    assert refused.value.field_errors == {"contact": ["Is required."]}


def test_a_refused_line_item_is_blamed_on_its_field(adapter, simulator):
    ref = adapter.reference_data()
    values = {
        "name": "Bad unit",
        "contact": next(iter(simulator.contacts)),
        "unit_type": "utype_doesnotexist",
    }
    with pytest.raises(ValidationFailed) as refused:
        adapter.create_deal(values, ref=ref, idempotency_key="k-bad-unit")
    assert list(refused.value.field_errors) == ["unit_type"]


def deal_with_both_line_items(adapter, simulator, ref):
    raw = next(
        d
        for d in simulator.deals.values()
        if d["status"] == "open"
        and "id" in d["stage"]
        and {i["type"] for i in d["line_items"]} == {"unit_type", "protection"}
    )
    return adapter.get_deal(raw["id"], ref=ref)


def test_line_item_fields_offer_the_catalogue_by_name(adapter, simulator):
    ref = adapter.reference_data()
    deal = deal_with_both_line_items(adapter, simulator, ref)
    fields = {f.name: f for f in adapter.editable_fields(deal, ref=ref)}
    current = {item.type: item.item_id for item in deal.line_items}
    assert fields["unit_type"].value == current["unit_type"]
    assert fields["protection"].value == current["protection"]
    assert {c.label for c in fields["unit_type"].choices} >= {"Small unit (50 sq ft)"}
    assert all(c.label.startswith("Cover £") for c in fields["protection"].choices)


def test_replacing_the_unit_type_keeps_the_protection(adapter, sandbox, simulator):
    ref = adapter.reference_data()
    deal = deal_with_both_line_items(adapter, simulator, ref)
    current = {item.type: item.item_id for item in deal.line_items}
    other = next(i.id for i in ref.catalogue_of("unit_type") if i.id != current["unit_type"])
    sandbox.clear_log()

    updated = adapter.update_deal(
        deal.id, {"unit_type": other}, ref=ref, idempotency_key="k", current=deal
    )

    (sent,) = writes(sandbox)
    assert sent.method == "PATCH"
    assert sent.body == {
        "line_items": [
            {"type": "unit_type", "item": {"id": other}},
            {"type": "protection", "item": {"id": current["protection"]}},
        ]
    }
    assert {i.type: i.item_id for i in updated.line_items} == {
        "unit_type": other,
        "protection": current["protection"],
    }


def test_removing_the_protection_sends_only_the_unit_type(adapter, sandbox, simulator):
    ref = adapter.reference_data()
    deal = deal_with_both_line_items(adapter, simulator, ref)
    unit_type = next(i.item_id for i in deal.line_items if i.type == "unit_type")
    sandbox.clear_log()
    updated = adapter.update_deal(
        deal.id, {"protection": None}, ref=ref, idempotency_key="k", current=deal
    )
    (sent,) = writes(sandbox)
    assert sent.body == {"line_items": [{"type": "unit_type", "item": {"id": unit_type}}]}
    assert [i.type for i in updated.line_items] == ["unit_type"]


def test_without_the_catalogue_line_items_keep_their_ids_and_are_not_editable(
    adapter, sandbox, simulator
):
    """S-A15 fallback: a token that may not read the catalogue (403)."""
    sandbox.set_variants("stora", ["catalogue_403"])
    ref = adapter.reference_data()  # the rest of the reference data still arrives
    assert ref.catalogue == () and ref.pipelines[0].stages and ref.contacts
    states = {s.assumption.id: s.state for s in adapter.assumption_report()}
    assert states["S-A15"] == FELL_BACK
    deal = deal_with_both_line_items(adapter, simulator, ref)
    names = {f.name for f in adapter.editable_fields(deal, ref=ref)}
    assert not names & {"unit_type", "protection"}
    sandbox.set_variants("stora", [])
    assert StoraAdapter(adapter.connection).reference_data().catalogue == ()  # remembered
    assert {s.assumption.id: s.state for s in adapter.assumption_report()}["S-A15"] != HELD
