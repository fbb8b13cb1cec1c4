"""New deal through the views, against the sandbox over real HTTP: the form in each vendor's
words, the contact search over the store, the create (store, audit, idempotency), and refusals
per field with what was typed kept."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse

from dealdesk.deals.models import AuditEntry
from dealdesk.sync.models import ReferenceItem, SyncedDeal
from tests.deals.demo_deals import writes

pytestmark = pytest.mark.django_db

NEW = reverse("deals:new")
LOOKUP = reverse("deals:new_lookup")


def text(response) -> str:
    return response.content.decode()


def labels(html: str) -> list[str]:
    """The visible label texts of the create form, in order."""
    found = re.findall(r'<label for="[^"]+">([^<]+)', html)
    return [html_lib.unescape(label).strip() for label in found]


def key_of(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html).group(1)


def a_contact(connection, name_part: str = "") -> ReferenceItem:
    rows = ReferenceItem.objects.filter(connection=connection, kind=ReferenceItem.Kind.CONTACT)
    return rows.filter(name__icontains=name_part).order_by("name").first()


def first_stage(connection) -> ReferenceItem:
    return (
        ReferenceItem.objects.filter(connection=connection, kind=ReferenceItem.Kind.STAGE)
        .order_by("order")
        .first()
    )


def test_the_list_offers_new_deal_to_sales_only(sales_client, viewer_user):
    assert 'class="button new-deal-link"' in text(sales_client.get(reverse("deals:list")))
    sales_client.force_login(viewer_user)
    assert "new-deal-link" not in text(sales_client.get(reverse("deals:list")))


def test_the_stora_form_asks_in_storas_words(sales_client):
    html = text(sales_client.get(NEW + "?source=stora"))
    assert labels(html) == ["Source", "Name", "Contact", "Stage", "Unit type", "Protection"]
    assert "Create deal" in html
    assert 'name="idempotency_key"' in html


def test_the_nodestash_form_asks_in_nodestash_words(sales_client):
    html = text(sales_client.get(NEW + "?source=nodestash"))
    assert labels(html) == [
        "Source",
        "Title",
        "Value",
        "Currency",
        "Pipeline and stage",
        "Contact",
        "Company",
        "Expected close date",
        "Tags",
    ]


def test_each_render_carries_a_new_idempotency_key(sales_client):
    first = key_of(text(sales_client.get(NEW)))
    second = key_of(text(sales_client.get(NEW)))
    assert first != second


def test_a_board_column_link_preselects_its_stage(sales_client, connections):
    stage = first_stage(connections["stora"])
    later = (
        ReferenceItem.objects.filter(connection=connections["stora"], kind="stage")
        .exclude(pk=stage.pk)
        .first()
    )
    html = text(sales_client.get(f"{NEW}?source=stora&stage={later.upstream_id}"))
    assert re.search(rf'<option value="{later.upstream_id}" selected>', html)


def test_the_list_and_the_board_link_to_new_deal_for_sales_only(sales_client, viewer_user):
    assert 'href="/deals/new/"' in text(sales_client.get(reverse("deals:list")))
    board = text(sales_client.get(reverse("board:board") + "?pipeline=stora:stora"))
    assert "/deals/new/?source=stora&amp;stage=dstg_" in board
    sales_client.force_login(viewer_user)
    assert "/deals/new/" not in text(sales_client.get(reverse("deals:list")))
    assert "/deals/new/" not in text(sales_client.get(reverse("board:board")))


def test_viewers_may_not_open_the_form_or_create(viewer_client, sandbox):
    assert viewer_client.get(NEW).status_code == 403
    assert viewer_client.post(NEW, {"source": "stora", "name": "x"}).status_code == 403
    assert viewer_client.get(LOOKUP + "?source=stora&field=contact").status_code == 403
    assert writes(sandbox, "stora") == []


def test_contact_search_reads_the_store_and_calls_nobody(sales_client, sandbox, connections):
    contact = a_contact(connections["stora"], "Amara")
    sandbox.clear_log()
    response = sales_client.get(
        LOOKUP, {"source": "stora", "field": "contact", "contact_search": "amara"}
    )
    html = text(response)
    assert f'value="{contact.upstream_id}"' in html
    assert "Amara Nwosu" in html and "amara.nwosu@example.com" in html
    assert "1 match" in html
    assert sandbox.requests() == []


def test_contact_search_matches_email_too_and_keeps_the_picked_contact(sales_client, connections):
    picked = a_contact(connections["stora"], "Raj")
    html = text(
        sales_client.get(
            LOOKUP,
            {
                "source": "stora",
                "field": "contact",
                "contact_search": "northernremovals",
                "contact": picked.upstream_id,
            },
        )
    )
    assert "Northern Removals Ltd" in html
    assert re.search(rf'value="{picked.upstream_id}" checked', html)


def test_creating_a_stora_deal_sends_the_documented_body_and_shows_it_at_once(
    sales_client, sandbox, connections
):
    contact = a_contact(connections["stora"], "Amara")
    stage = first_stage(connections["stora"])
    key = key_of(text(sales_client.get(NEW + "?source=stora")))
    sandbox.clear_log()

    response = sales_client.post(
        NEW,
        {
            "source": "stora",
            "idempotency_key": key,
            "name": "Amara — second unit",
            "contact": contact.upstream_id,
            "stage": stage.upstream_id,
            "unit_type": "",
            "protection": "",
        },
    )

    (sent,) = writes(sandbox, "stora")
    assert (sent.method, sent.path) == ("POST", "/2025-09/deals")
    assert sent.body == {
        "name": "Amara — second unit",
        "contact": {"id": contact.upstream_id},
        "stage": {"id": stage.upstream_id},
    }
    assert sent.headers["idempotency-key"] == key
    row = SyncedDeal.objects.get(connection=connections["stora"], name="Amara — second unit")
    assert response.status_code == 303
    assert response["Location"] == reverse("deals:detail", args=["stora", row.upstream_id])
    assert row.contact_name == "Amara Nwosu"
    page = text(sales_client.get(response["Location"]))
    assert "Deal created in Stora." in page
    entry = AuditEntry.objects.get(action="create")
    assert (entry.deal_id, entry.outcome, entry.idempotency_key) == (
        row.upstream_id,
        AuditEntry.Outcome.SUCCEEDED,
        key,
    )
    assert {"field": "contact", "label": "Contact", "old": None, "new": "Amara Nwosu"} in (
        entry.changes
    )


def test_a_double_submit_of_one_form_creates_one_deal(sales_client, sandbox, connections):
    contact = a_contact(connections["stora"])
    html = text(sales_client.get(NEW + "?source=stora"))
    data = {
        "source": "stora",
        "idempotency_key": key_of(html),
        "name": "Submitted twice",
        "contact": contact.upstream_id,
        "stage": first_stage(connections["stora"]).upstream_id,
    }
    first = sales_client.post(NEW, data)
    second = sales_client.post(NEW, data)

    assert first["Location"] == second["Location"]
    assert SyncedDeal.objects.filter(name="Submitted twice").count() == 1
    assert len([r for r in writes(sandbox, "stora") if r.path == "/2025-09/deals"]) == 1


def test_creating_a_nodestash_deal_sends_value_currency_pipeline_stage_and_tags(
    sales_client, sandbox, connections
):
    nodestash = connections["nodestash"]
    contact = ReferenceItem.objects.filter(connection=nodestash, kind="contact").exclude(
        details__company_id=""
    )[0]
    company_id = contact.details["company_id"]
    stage = ReferenceItem.objects.filter(connection=nodestash, kind="stage", stage_type="open")[1]
    key = key_of(text(sales_client.get(NEW + "?source=nodestash")))
    sandbox.clear_log()

    response = sales_client.post(
        NEW,
        {
            "source": "nodestash",
            "idempotency_key": key,
            "name": "Fleet storage",
            "value": "12500.50",
            "currency": "usd",
            "stage": stage.upstream_id,
            "contact": contact.upstream_id,
            "company": company_id,
            "expected_close_date": "2027-03-31",
            "tags": "fleet, q1",
        },
    )

    (sent,) = writes(sandbox, "nodestash")
    assert (sent.method, sent.path) == ("POST", "/v1/deals")
    assert sent.body == {
        "title": "Fleet storage",
        "value": 12500.5,
        "currency": "USD",
        "pipeline_id": stage.pipeline_id,
        "stage_id": stage.upstream_id,
        "contact_id": contact.upstream_id,
        "company_id": company_id,
        "expected_close_date": "2027-03-31",
        "tags": ["fleet", "q1"],
    }
    assert sent.headers["idempotency-key"] == key
    row = SyncedDeal.objects.get(connection=nodestash, name="Fleet storage")
    assert response.status_code == 303
    assert (row.value_amount, row.value_currency, row.stage_id) == (
        pytest.approx(12500.5),
        "USD",
        stage.upstream_id,
    )


def test_missing_fields_are_named_and_typed_values_kept_nothing_sent(sales_client, sandbox):
    key = key_of(text(sales_client.get(NEW + "?source=nodestash")))
    sandbox.clear_log()
    response = sales_client.post(
        NEW,
        {
            "source": "nodestash",
            "idempotency_key": key,
            "name": "",
            "value": "12,5 euros",
            "currency": "EURO",
            "tags": "kept, tags",
        },
    )
    html = text(response)
    assert response.status_code == 422
    assert 'id="id_new_name_error"' in html and "Enter a title." in html
    assert "Enter an amount in numbers" in html
    assert "three-letter currency code" in html
    assert 'value="12,5 euros"' in html and 'value="kept, tags"' in html
    assert 'aria-invalid="true"' in html
    assert key_of(html) != key  # a corrected submit is a new request
    assert writes(sandbox, "nodestash") == []


def test_a_vendor_refusal_lands_next_to_its_field(sales_client, sandbox, connections):
    key = key_of(text(sales_client.get(NEW + "?source=stora")))
    sandbox.fail_next(
        "stora",
        1,
        422,
        method="POST",
        body={
            "error": {
                "code": "invalid_content",
                "type": "invalid_request_error",
                "message": "The request body content is not valid.",
                "details": [{"message": "value at `/name` is taken", "pointer": "/name"}],
            }
        },
    )
    response = sales_client.post(
        NEW,
        {
            "source": "stora",
            "idempotency_key": key,
            "name": "Duplicate name",
            "contact": a_contact(connections["stora"]).upstream_id,
            "stage": first_stage(connections["stora"]).upstream_id,
        },
    )
    html = text(response)
    assert response.status_code == 422
    assert re.search(r'id="id_new_name_error">Is taken\.<', html)
    assert 'value="Duplicate name"' in html
    entry = AuditEntry.objects.get(action="create")
    assert (entry.outcome, entry.deal_name) == (AuditEntry.Outcome.FAILED, "Duplicate name")
    assert not SyncedDeal.objects.filter(name="Duplicate name").exists()


def test_a_contact_the_store_does_not_know_is_refused_before_sending(
    sales_client, sandbox, connections
):
    key = key_of(text(sales_client.get(NEW + "?source=stora")))
    sandbox.clear_log()
    response = sales_client.post(
        NEW,
        {
            "source": "stora",
            "idempotency_key": key,
            "name": "Crafted",
            "contact": "con_notreal",
            "stage": first_stage(connections["stora"]).upstream_id,
        },
    )
    assert response.status_code == 422
    assert "Choose a contact from the list." in text(response)
    assert writes(sandbox, "stora") == []


def test_find_without_javascript_searches_and_keeps_the_form(sales_client, sandbox):
    response = sales_client.post(
        NEW,
        {
            "source": "stora",
            "idempotency_key": "k" * 32,
            "name": "Typed before searching",
            "contact_search": "Ben",
            "find": "contact",
        },
    )
    html = text(response)
    assert response.status_code == 200
    assert 'value="Typed before searching"' in html
    assert "Ben Carter" in html
    assert "field-error" not in html
    assert writes(sandbox, "stora") == []


def _stora_form(sales_client, connections) -> dict:
    return {
        "source": "stora",
        "idempotency_key": key_of(text(sales_client.get(NEW + "?source=stora"))),
        "name": "Answer lost on the way",
        "contact": a_contact(connections["stora"]).upstream_id,
        "stage": first_stage(connections["stora"]).upstream_id,
    }


def test_an_unreadable_answer_says_the_deal_may_exist_and_keeps_the_form(
    sales_client, sandbox, connections
):
    data = _stora_form(sales_client, connections)
    sandbox.fail_next("stora", 1, 200, body="{oops", method="POST")

    response = sales_client.post(NEW, data)

    html = html_lib.unescape(text(response))
    assert response.status_code == 503
    assert "cannot tell whether your change was saved" in html
    assert "Look for the deal in the list before you try again." in html
    assert 'value="Answer lost on the way"' in html
    entry = AuditEntry.objects.get(action="create")
    assert entry.outcome == AuditEntry.Outcome.FAILED


def test_a_rate_limited_create_says_when_to_try_again(sales_client, sandbox, connections):
    import time

    data = _stora_form(sales_client, connections)
    reset = str(int(time.time()) + 30)
    sandbox.fail_next(
        "stora",
        1,
        429,
        body={"error": {"code": "too_many_requests", "message": "Rate Limit Exceeded."}},
        headers={"RateLimit-Limit": "10", "RateLimit-Reset": reset},
        method="POST",
    )

    response = sales_client.post(NEW, data)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 31
    assert "rate limiting DealDesk" in text(response)
    assert not SyncedDeal.objects.filter(name="Answer lost on the way").exists()
