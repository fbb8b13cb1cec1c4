"""Sync health in the admin: state, progress, quota and the last error, and Resync now."""

from __future__ import annotations

import pytest
from django.urls import reverse

from dealdesk.sync.engine import sync_run
from dealdesk.sync.models import SyncState

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:sync_syncstate_changelist")


def test_the_changelist_shows_each_connections_health(admin_client, connections, sandbox):
    sandbox.set_outage("stora", True)
    sync_run(connections["stora"])
    SyncState.objects.filter(connection=connections["nodestash"]).update(
        backfill_done=False, backfill_count=120, backfill_total=480
    )

    html = admin_client.get(CHANGELIST).content.decode()

    assert "Stora cannot be reached." in html  # the last error, in plain words
    assert "Failing" in html
    assert 'Backfilling: 120 of 480 deals <progress max="480" value="120">' in html
    assert "sync calls" in html  # quota used today
    assert "the vendor reports" in html  # nodestash's daily quota from its headers


def test_resync_now_syncs_at_once_and_clears_a_pause(admin_client, connections, sandbox):
    state = SyncState.objects.get(connection=connections["stora"])
    state.paused_until = "2099-01-01T00:00:00Z"
    state.save()
    sandbox.mutate_deal("stora", next(iter(sandbox.simulators["stora"].deals)), {"name": "Fresh"})

    response = admin_client.post(
        CHANGELIST, {"action": "resync_now", "_selected_action": [state.pk]}, follow=True
    )

    assert "Queued a sync of 1 connection(s)." in response.content.decode()
    state.refresh_from_db()
    assert state.paused_until is None
    assert connections["stora"].deals.filter(name="Fresh").exists()  # the queue ran it inline


def test_a_sync_state_cannot_be_added_or_deleted_by_hand(admin_client, connections):
    state = SyncState.objects.get(connection=connections["stora"])

    assert admin_client.get(reverse("admin:sync_syncstate_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:sync_syncstate_delete", args=[state.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
