"""Issue 16 journeys in Chromium: a new deal on each source (from the list and from a board
column), a double submit, refusals that keep what was typed, the contact at hand, and Stora
line items replaced by name. Each checks what the sandbox received."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from dealdesk.sync.models import ReferenceItem, SyncedDeal
from tests.browser.axe import assert_accessible


def creates(app, provider: str) -> list:
    path = "/2025-09/deals" if provider == "stora" else "/v1/deals"
    return [r for r in app.writes(provider) if r.method == "POST" and r.path == path]


def ref_row(kind: str, slug: str, **where) -> ReferenceItem:
    return ReferenceItem.objects.filter(connection__slug=slug, kind=kind, **where).order_by(
        "order"
    )[0]


def pick(page, field_label: str, search: str, option: str) -> None:
    """Search a contact or company by typing, then choose the match."""
    page.get_by_label(field_label, exact=True).fill(search)
    page.get_by_role("radio", name=re.compile(re.escape(option))).check()


def test_new_stora_deal_from_the_list_lands_on_its_page_with_exactly_what_was_sent(app):
    page = app.page
    app.login()
    assert_accessible(page, "deal list with New deal")
    page.get_by_role("link", name="New deal").click()
    page.get_by_role("heading", name="New deal").wait_for()
    assert_accessible(page, "new deal form, Stora")
    app.mark_page()
    page.get_by_label("Source").select_option(label="nodestash")  # the form follows the source
    expect(page.get_by_label("Title")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_count(0)
    assert_accessible(page, "new deal form, nodestash")
    page.get_by_label("Source").select_option(label="Stora")
    expect(page.get_by_label("Name", exact=True)).to_be_visible()
    app.assert_no_reload()
    contact = ref_row("contact", "stora", name="Amara Nwosu")
    stage = ref_row("stage", "stora", name="Quote sent")
    unit = ref_row("catalogue", "stora", stage_type="unit_type", name="Small unit")
    app.sandbox.clear_log()

    page.get_by_label("Name", exact=True).fill("Amara — second unit")
    pick(page, "Contact", "amara", "Amara Nwosu")
    assert_accessible(page, "new deal form with contact matches")
    page.get_by_label("Stage").select_option(label="Quote sent")
    page.get_by_label("Unit type").select_option(label="Small unit (50 sq ft)")
    page.get_by_role("button", name="Create deal").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Amara — second unit")
    expect(page.get_by_text("Deal created in Stora.")).to_be_visible()
    (sent,) = creates(app, "stora")
    assert sent.body == {
        "name": "Amara — second unit",
        "contact": {"id": contact.upstream_id},
        "stage": {"id": stage.upstream_id},
        "line_items": [{"type": "unit_type", "item": {"id": unit.upstream_id}}],
    }
    assert sent.status == 201 and sent.headers["idempotency-key"]
    card = page.get_by_role("region", name="Contact")
    expect(card.get_by_role("link", name="amara.nwosu@example.com")).to_have_attribute(
        "href", "mailto:amara.nwosu@example.com"
    )
    expect(page.locator("table.line-items")).to_contain_text("Small unit")
    assert_accessible(page, "new deal's page after create")
    page.goto(f"{app.url}/deals/?q=second+unit")
    expect(page.get_by_role("link", name="Amara — second unit")).to_be_visible()


def test_new_nodestash_deal_from_a_board_column_starts_in_that_stage(app):
    page = app.page
    app.login()
    stage = ReferenceItem.objects.filter(
        connection__slug="nodestash", kind="stage", stage_type="open"
    ).order_by("pipeline_id", "order")[1]
    contact = ReferenceItem.objects.filter(connection__slug="nodestash", kind="contact").exclude(
        details__company_id=""
    )[0]
    company = ReferenceItem.objects.get(
        connection__slug="nodestash", kind="place", upstream_id=contact.details["company_id"]
    )
    page.goto(f"{app.url}/board/?pipeline=nodestash:{stage.pipeline_id}")
    assert_accessible(page, "board with New deal in each open column")
    column = page.get_by_role("region", name=stage.name, exact=True)
    column.get_by_role("link", name=f"New deal in {stage.name}").click()
    page.get_by_role("heading", name="New deal").wait_for()
    expect(page.get_by_label("Pipeline and stage")).to_have_value(stage.upstream_id)
    app.sandbox.clear_log()

    page.get_by_label("Title").fill("Fleet storage")
    page.get_by_label("Value").fill("12500.50")
    page.get_by_label("Currency").fill("USD")
    pick(page, "Contact", contact.name.split()[0], contact.name)
    pick(page, "Company", company.name, company.name)
    page.get_by_label("Expected close date").fill("2027-03-31")
    page.get_by_label("Tags").fill("fleet, q1")
    app.screenshot("new-deal.png")
    page.get_by_role("button", name="Create deal").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Fleet storage")
    (sent,) = creates(app, "nodestash")
    assert sent.body == {
        "title": "Fleet storage",
        "value": 12500.5,
        "currency": "USD",
        "pipeline_id": stage.pipeline_id,
        "stage_id": stage.upstream_id,
        "contact_id": contact.upstream_id,
        "company_id": company.upstream_id,
        "expected_close_date": "2027-03-31",
        "tags": ["fleet", "q1"],
    }
    expect(page.get_by_text("$12,500.50").first).to_be_visible()


def test_a_double_submit_of_the_form_creates_one_deal(app):
    page = app.page
    app.login()
    page.goto(f"{app.url}/deals/new/?source=stora")
    page.get_by_label("Name", exact=True).fill("Sent twice by a jittery hand")
    pick(page, "Contact", "ben", "Ben Carter")
    app.sandbox.clear_log()

    statuses = page.evaluate(
        """async () => {
            const form = document.getElementById("new-deal-form");
            const send = () => fetch(form.action, {
                method: "POST", body: new FormData(form), redirect: "manual"});
            const answers = await Promise.all([send(), send()]);
            return answers.map((answer) => answer.type);
        }"""
    )

    assert statuses == ["opaqueredirect", "opaqueredirect"]  # both answered "go to the deal"
    assert SyncedDeal.objects.filter(name="Sent twice by a jittery hand").count() == 1
    sent = creates(app, "stora")
    assert {r.headers["idempotency-key"] for r in sent} == {
        page.locator("input[name=idempotency_key]").input_value()
    }
    assert len(app.sandbox.simulators["stora"].deals) == len(
        {d["id"] for d in app.sandbox.simulators["stora"].deals.values()}
    )
    names = [d["name"] for d in app.sandbox.simulators["stora"].deals.values()]
    assert names.count("Sent twice by a jittery hand") == 1


def test_refusals_show_by_their_field_and_keep_what_was_typed(app):
    page = app.page
    app.login()
    page.goto(f"{app.url}/deals/new/?source=stora")
    app.sandbox.clear_log()
    page.get_by_label("Name", exact=True).fill("Storage for the summer")
    page.get_by_role("button", name="Create deal").click()

    expect(page.get_by_text("Choose a contact.")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Storage for the summer")
    expect(page.get_by_label("Contact", exact=True)).to_have_attribute("aria-invalid", "true")
    assert creates(app, "stora") == []
    assert_accessible(page, "new deal form with a missing field")

    search = page.get_by_label("Contact", exact=True)
    app.mark_page()
    search.fill("lucy")
    search.press("Enter")  # looks the contact up in place; does not submit the form
    page.get_by_role("radio", name=re.compile("Lucy Harrington")).check()
    app.assert_no_reload()
    assert creates(app, "stora") == []
    app.sandbox.fail_next(
        "stora",
        1,
        422,
        method="POST",
        body={
            "error": {
                "code": "invalid_content",
                "type": "invalid_request_error",
                "message": "The request body content is not valid.",
                "details": [{"message": "value at `/name` is too similar", "pointer": "/name"}],
            }
        },
    )
    page.get_by_role("button", name="Create deal").click()

    name = page.get_by_label("Name", exact=True)
    expect(page.get_by_text("Is too similar.")).to_be_visible()
    expect(name).to_have_value("Storage for the summer")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("radio", name=re.compile("Lucy Harrington"))).to_be_checked()
    assert_accessible(page, "new deal form with a vendor refusal")
    assert len(creates(app, "stora")) == 1  # the refused one; nothing else was sent


def test_the_contact_is_at_hand_on_a_stora_deal(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    deal = SyncedDeal.objects.get(upstream_id=deal_id)
    contact = ReferenceItem.objects.get(
        connection__slug="stora", kind="contact", upstream_id=deal.contact_id
    )

    card = page.get_by_role("region", name="Contact")
    expect(card).to_contain_text(contact.name)
    email = contact.details["email"]
    expect(card.get_by_role("link", name=email)).to_have_attribute("href", f"mailto:{email}")
    if contact.details["phone"]:
        phone = card.get_by_role("link", name=contact.details["phone"])
        expect(phone).to_have_attribute("href", re.compile(r"^tel:\+?[0-9]{6,15}$"))
    backoffice = card.get_by_role("link", name=re.compile("Open in Stora Backoffice"))
    expect(backoffice).to_have_attribute("href", f"https://app.stora.test/deals/{deal_id}")
    assert_accessible(page, "deal page with the contact card")


def test_replacing_a_stora_unit_type_by_name(app):
    page = app.page
    app.login()
    deal_id = app.open_deal("stora")
    table = page.locator("table.line-items")
    expect(table).not_to_contain_text("utype_")
    app.mark_page()
    app.sandbox.clear_log()

    page.get_by_role("button", name="Edit Unit type").click()
    page.get_by_label("Unit type").select_option(label="Container (160 sq ft)")
    assert_accessible(page, "deal page editing the unit type")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("button", name="Edit Unit type")).to_be_visible()
    expect(table).to_contain_text("Container")
    expect(table).to_contain_text("160 sq ft")
    app.assert_no_reload()
    unit = ref_row("catalogue", "stora", stage_type="unit_type", name="Container")
    (patch,) = app.writes("stora")
    assert (patch.method, patch.path) == ("PATCH", f"/2025-09/deals/{deal_id}")
    assert {"type": "unit_type", "item": {"id": unit.upstream_id}} in patch.body["line_items"]
    expect(page.get_by_role("region", name="History")).to_contain_text("Unit type")
    assert_accessible(page, "deal page after replacing the unit type")


def test_the_new_deal_form_and_the_contact_card_fit_a_phone(app):
    page = app.page
    page.set_viewport_size({"width": 390, "height": 844})
    app.login()
    page.goto(f"{app.url}/deals/new/?source=nodestash")
    page.get_by_label("Contact", exact=True).fill("a")
    matches = page.get_by_role("group", name=re.compile("Choose the contact: matches"))
    expect(matches).to_be_visible()
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(fits), "the form scrolls sideways on a phone"
    assert_accessible(page, "new deal form with matches, 390")
    app.open_deal("stora")
    expect(page.get_by_role("region", name="Contact")).to_be_visible()
    assert page.evaluate(fits), "the deal page scrolls sideways on a phone"
    assert_accessible(page, "deal page with the contact card, 390")
