"""Admins pick a stage by name when setting its stale threshold; the ids are filled in."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from dealdesk.deals.models import StageSetting
from dealdesk.sync.models import ReferenceItem

pytestmark = pytest.mark.django_db

ADD = reverse("admin:deals_stagesetting_add")


def stora_stage_id(sandbox, name: str) -> str:
    return next(s["id"] for s in sandbox.simulators["stora"].stages.values() if s["name"] == name)


def test_the_stage_select_names_every_stage_of_every_connection(
    admin_client, connections, no_rate_limits, sandbox
):
    html = admin_client.get(ADD).content.decode()
    assert "Stora · New enquiry" in html
    assert "nodestash · Sales · Lead" in html
    assert "Second Stage - (Deleted)" not in html  # a deleted stage has no id to set up


def test_saving_a_stage_fills_in_its_connection_id_and_name(
    admin_client, connections, no_rate_limits, sandbox
):
    stage_id = stora_stage_id(sandbox, "New enquiry")
    response = admin_client.post(ADD, {"stage": f"stora|{stage_id}", "stale_after_days": 3})
    assert response.status_code == 302
    setting = StageSetting.objects.get()
    assert (setting.connection_slug, setting.stage_id, setting.stage_name) == (
        "stora",
        stage_id,
        "New enquiry",
    )
    assert setting.stale_after_days == 3


def test_a_second_setting_for_the_same_stage_is_refused(
    admin_client, connections, no_rate_limits, sandbox
):
    stage_id = stora_stage_id(sandbox, "New enquiry")
    admin_client.post(ADD, {"stage": f"stora|{stage_id}", "stale_after_days": 3})
    response = admin_client.post(ADD, {"stage": f"stora|{stage_id}", "stale_after_days": 9})
    assert response.status_code == 200
    assert "already has a setting" in response.content.decode()
    assert StageSetting.objects.count() == 1


def test_the_stages_come_from_the_store_even_while_a_source_is_down(
    admin_client, connections, no_rate_limits, sandbox
):
    cache.clear()
    sandbox.set_outage("stora", True)
    sandbox.clear_log()
    response = admin_client.get(ADD)
    html = response.content.decode()
    assert response.status_code == 200
    assert "could not be read" not in html
    assert "Stora · New enquiry" in html
    assert "nodestash · Sales · Lead" in html
    assert sandbox.requests("stora") == [] and sandbox.requests("nodestash") == []


def test_a_source_never_synced_that_cannot_be_read_is_named_and_the_others_still_listed(
    admin_client, connections, no_rate_limits, sandbox
):
    cache.clear()
    ReferenceItem.objects.filter(connection=connections["stora"]).delete()  # never synced
    sandbox.set_outage("stora", True)
    response = admin_client.get(ADD)
    html = response.content.decode()
    assert response.status_code == 200
    assert "could not be read: Stora" in html
    assert "nodestash · Sales · Lead" in html


def test_an_existing_setting_opens_with_its_stage_chosen(
    admin_client, connections, no_rate_limits, sandbox
):
    stage_id = stora_stage_id(sandbox, "Quote sent")
    setting = StageSetting.objects.create(
        connection_slug="stora", stage_id=stage_id, stage_name="Quote sent", stale_after_days=5
    )
    html = admin_client.get(
        reverse("admin:deals_stagesetting_change", args=[setting.pk])
    ).content.decode()
    assert f'<option value="stora|{stage_id}" selected>Stora · Quote sent</option>' in html
