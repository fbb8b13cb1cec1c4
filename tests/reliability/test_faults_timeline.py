"""Add note under every upstream fault, aimed at nodestash's POST /activities: the user reads the
problem in role="alert" above the forms, what was typed comes back, the audit trail records the
failure, exactly one POST is sent (never retried), and the same form submitted again once the
fault clears adds the note exactly once."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dealdesk.deals.models import AuditEntry
from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.sync.models import SyncedActivity
from tests.reliability.conftest import HTMX, alerts, text
from tests.reliability.faults import FAULTS, Fault, wait_until_answered

pytestmark = pytest.mark.django_db

TYPED = "Typed while nodestash failed"


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_add_note_under_a_fault_says_so_keeps_the_text_and_lands_once_after(
    fault: Fault, sales_client, sandbox, settings
):
    deal = deal_list(filters=DealFilters(source="nodestash", status="open")).deals[0]
    url = reverse("timeline:add_note", args=[deal.connection_slug, deal.id])
    data = {"subject": TYPED, "body": "", "idempotency_key": f"fault-{fault.name}"}
    sandbox.set_rate_limiting("nodestash", False)
    sandbox.clear_log()
    fault.inject(sandbox, settings, "nodestash", method="POST")

    response = sales_client.post(url, data, **HTMX)

    wait_until_answered(sandbox, "nodestash")
    posts = [r for r in sandbox.requests("nodestash") if r.method == "POST"]
    assert len(posts) == 1  # a write is never retried
    if fault.name == "http404":
        assert response.status_code == 404
    else:
        expected = 400 if fault.name == "validation" else fault.page_status
        assert response.status_code == expected
        html = text(response)
        shown = " ".join(alerts(html))
        assert shown and all(words in shown for words in fault.words), shown
        assert f'value="{TYPED}"' in html
        assert "Note added." not in html
    entry = AuditEntry.objects.get(deal_id=deal.id, action="add_note")
    assert entry.outcome == "failed" and entry.error_message

    Fault.clear(sandbox, settings, "nodestash")
    again = sales_client.post(url, data, **HTMX)

    assert again.status_code == 200 and "Note added." in text(again)
    assert SyncedActivity.objects.filter(deal_id=deal.id, subject=TYPED).count() == 1
    upstream = sandbox.simulators["nodestash"].activities.values()
    assert sum(1 for a in upstream if a["subject"] == TYPED) == 1
