"""The deal page's contact card (email, phone, company or site, Backoffice link) and Stora line
items by name, edited through the normal write path — Django's test client against the
sandbox over real HTTP."""

from __future__ import annotations

import re

import pytest

from dealdesk.deals.models import AuditEntry
from dealdesk.providers.base import ContactInfo
from dealdesk.sync.models import ReferenceItem
from tests.deals.demo_deals import a_deal, url, writes
from tests.deals.views.test_writes import HTMX, edit_form

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """Each test reads several deals: the per-second budgets are not under test here."""


def html_of(response) -> str:
    return response.content.decode()


def contact_card(html: str) -> str:
    match = re.search(r'<section id="contact-card".*?</section>', html, re.S)
    assert match, "the page has a contact card"
    return match.group(0)


def test_a_stora_deal_page_puts_the_contact_at_hand_from_the_store(sales_client, sandbox):
    detail = a_deal(
        "stora",
        where=lambda d: (
            d.deal.site and d.deal.contact and d.contacts.contact and d.contacts.contact.phone
        ),
    )
    contact = detail.contacts.contact
    sandbox.clear_log()

    card = contact_card(html_of(sales_client.get(url("detail", detail))))

    assert sandbox.requests() == []  # read from the store, no call per page view
    assert f'<a href="mailto:{contact.email}">{contact.email}</a>' in card
    digits = re.sub(r"[^0-9+]", "", contact.phone)
    assert f'<a href="tel:{digits}">{contact.phone}</a>' in card
    assert f"<dt>Site</dt><dd>{detail.deal.site.name}<br>" in card
    assert detail.contacts.place.address in card
    assert (
        f'<a href="https://app.stora.test/deals/{detail.deal.id}" rel="noopener noreferrer" '
        'target="_blank">Open in Stora Backoffice' in card
    )


def test_a_nodestash_deal_page_shows_the_company_and_no_vendor_link(sales_client):
    detail = a_deal("nodestash", where=lambda d: d.deal.company and d.contacts.place)
    card = contact_card(html_of(sales_client.get(url("detail", detail))))
    assert f"<dt>Company</dt><dd>{detail.deal.company.name}" in card
    assert "Backoffice" not in card


def test_odd_contact_details_are_shown_as_text_never_as_links(sales_client, connections):
    detail = a_deal("stora", where=lambda d: d.deal.contact and d.contacts.contact)
    ReferenceItem.objects.filter(
        connection=connections["stora"], upstream_id=detail.deal.contact.id
    ).update(details={"email": 'x" onmouseover="alert(1)', "phone": "javascript:alert(1)"})
    ReferenceItem.objects.filter(connection=connections["stora"], kind="version").update(
        upstream_id="changed-for-this-test"
    )

    card = contact_card(html_of(sales_client.get(url("detail", detail))))

    assert "mailto:" not in card and "tel:" not in card
    assert "x&quot; onmouseover=&quot;alert(1)" in card
    assert "<dd>javascript:alert(1)</dd>" in card


def test_a_backoffice_template_that_is_not_https_gives_no_link(sales_client, connections):
    detail = a_deal("stora")
    ReferenceItem.objects.filter(connection=connections["stora"], kind="link").update(
        details={"href": "http://app.stora.test{rel}"}
    )
    ReferenceItem.objects.filter(connection=connections["stora"], kind="version").update(
        upstream_id="link-changed-for-this-test"
    )
    html = html_of(sales_client.get(url("detail", detail)))
    assert "Backoffice" not in html


def both_line_items(detail) -> bool:
    return {item.type for item in detail.deal.line_items} == {"unit_type", "protection"}


def test_stora_line_items_show_unit_type_name_and_size_and_protection_cover(sales_client):
    detail = a_deal("stora", where=both_line_items)
    html = html_of(sales_client.get(url("detail", detail)))
    table = re.search(r'<table class="mini-table line-items">.*?</table>', html, re.S).group(0)
    for item in detail.contacts.line_items:
        assert item.known
        assert f"<td>{item.name}</td><td>{item.detail or '—'}</td>" in table
        assert item.item_id not in table
    assert "Cover £" in table and "sq ft" in table
    assert ">Edit Unit type</button>" in html and ">Edit Protection</button>" in html


def test_replacing_the_unit_type_goes_through_the_write_path(sales_client, sandbox):
    detail = a_deal("stora", where=both_line_items)
    current = {item.type: item.item_id for item in detail.deal.line_items}
    field = next(f for f in detail.fields if f.name == "unit_type")
    other = next(c for c in field.choices if c.value != current["unit_type"])
    data = edit_form(sales_client, detail, "unit_type")
    assert data["original"] == current["unit_type"]
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "unit_type"), {**data, "unit_type": other.value}, **HTMX
    )

    html = html_of(response)
    assert response.status_code == 200
    assert other.label in html
    get, patch = [r for r in sandbox.requests("stora")]
    assert get.method == "GET"  # the re-read before the write
    assert (patch.method, patch.body) == (
        "PATCH",
        {
            "line_items": [
                {"type": "unit_type", "item": {"id": other.value}},
                {"type": "protection", "item": {"id": current["protection"]}},
            ]
        },
    )
    entry = AuditEntry.objects.get(action="update", deal_id=detail.deal.id)
    assert entry.outcome == AuditEntry.Outcome.SUCCEEDED
    assert entry.changes[0]["label"] == "Unit type"
    assert entry.changes[0]["new"] == other.label
    page = html_of(sales_client.get(url("detail", detail)))
    assert f"<td>{other.label.split(' (')[0]}</td>" in page  # the store has it at once


def test_a_line_item_changed_upstream_meanwhile_is_a_conflict(sales_client, sandbox):
    detail = a_deal("stora", where=both_line_items)
    field = next(f for f in detail.fields if f.name == "protection")
    data = edit_form(sales_client, detail, "protection")
    current = {item.type: item.item_id for item in detail.deal.line_items}
    others = [c.value for c in field.choices if c.value and c.value != current["protection"]]
    sandbox.mutate_deal(
        "stora",
        detail.deal.id,
        {
            "line_items": [
                {"item": {"id": current["unit_type"]}, "quantity": 1, "type": "unit_type"},
                {"item": {"id": others[0]}, "quantity": 1, "type": "protection"},
            ]
        },
    )
    sandbox.clear_log()

    response = sales_client.post(
        url("field_save", detail, "protection"), {**data, "protection": others[-1]}, **HTMX
    )

    assert response.status_code == 409
    assert writes(sandbox, "stora") == []  # the re-read found the change: nothing sent
    assert AuditEntry.objects.get(deal_id=detail.deal.id).outcome == "conflict"


def test_contact_info_is_kept_per_contact_in_reference_data(connections):
    from dealdesk.sync.store import reference_load

    ref = reference_load(connections["stora"])
    assert all(isinstance(c, ContactInfo) for c in ref.contacts)
    assert any(c.phone for c in ref.contacts) and any(c.email for c in ref.contacts)
    assert ref.catalogue and ref.places and ref.link_templates["bo"]
