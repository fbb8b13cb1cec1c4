"""The sharper filters, columns and CSV export on the list page, through Django's test client
over the sandbox's demo store: labels, typed values kept with a message, "My deals" through an
owner link, columns remembered in a saved view, and the export's every row."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils.html import escape

from dealdesk.deals import services
from dealdesk.deals.services import DealFilters, deal_list
from dealdesk.listtools.admin import OwnerLinkForm
from dealdesk.listtools.models import OwnerLink
from dealdesk.sync.store import reference_load

pytestmark = pytest.mark.django_db

LIST = "/deals/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def headers(html: str) -> list[str]:
    cells = [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', html, re.S)
    ]
    return [cell for cell in cells if cell != "Select"]  # the bulk tick box


def test_every_new_filter_has_a_label(sales_client):
    html = html_of(sales_client.get(LIST))
    for field_id, label in (
        ("filter-owner", "Owner"),
        ("filter-value-min", "Minimum value"),
        ("filter-value-max", "Maximum value"),
        ("filter-close-from", "Expected close from"),
        ("filter-close-to", "Expected close to"),
        ("filter-closing", "Closing this month"),
        ("filter-tags", "Tags"),
    ):
        assert re.search(rf'<label for="{field_id}"[^>]*>{label}</label>', html), label
        assert f'id="{field_id}"' in html


def test_the_owner_filter_offers_my_deals_and_each_staff_member_by_name(sales_client, connections):
    html = html_of(sales_client.get(LIST))
    assert '<option value="me">My deals</option>' in html
    staff = reference_load(connections["stora"]).staff
    assert staff
    for member in staff:
        assert f'<option value="stora:{member.value}">{escape(member.label)}</option>' in html


def test_min_above_max_says_so_keeps_what_was_typed_and_filters_nothing(sales_client):
    everything = deal_list(filters=DealFilters()).total_count
    html = html_of(sales_client.get(LIST, {"value_min": "5000", "value_max": "100"}))

    assert "The maximum value is less than the minimum" in html
    assert 'name="value_min" value="5000"' in html
    assert 'name="value_max" value="100"' in html
    assert re.search(r'id="filter-value-max"[^>]*aria-invalid="true"', html)
    assert f"of {everything}</p>" in html


def test_a_malformed_date_and_amount_are_named_and_kept(sales_client):
    response = sales_client.get(LIST, {"close_from": "2026-13-45", "value_min": "lots"}, **HTMX)
    html = html_of(response)
    assert "“2026-13-45” is not a date: use YYYY-MM-DD" in html
    assert "“lots” is not an amount" in html
    assert 'role="alert"' in html


def test_my_deals_without_an_owner_link_says_how_to_get_one(sales_client):
    html = html_of(sales_client.get(LIST, {"owner": "me"}))
    assert "nobody has linked you yet" in html
    assert "No deals match." in html


def test_my_deals_lists_the_deals_of_the_linked_staff_member(sales_client, sales_user, connections):
    member = reference_load(connections["stora"]).staff[0]
    OwnerLink.objects.create(
        user=sales_user, connection=connections["stora"], owner_id=member.value
    )
    html = html_of(sales_client.get(LIST, {"owner": "me", "cols": ["", "owner"]}))
    owners = re.findall(r'<td data-label="Owner">([^<]*)</td>', html)
    assert owners and set(owners) == {escape(member.label)}
    assert "nobody has linked you yet" not in html


def test_each_column_has_a_link_that_shows_or_hides_it_keeping_the_filters(sales_client):
    html = html_of(sales_client.get(LIST, {"status": "open"}))
    hide_stage = "/deals/?status=open&amp;cols=&amp;cols=source&amp;cols=status&amp;cols=value"
    assert re.search(rf'href="{re.escape(hide_stage)}[^"]*"[^>]*>Hide Stage</a>', html)
    assert ">Show Tags</a>" in html and ">Hide Owner</a>" in html


def test_hidden_columns_are_left_out_and_new_ones_shown(sales_client):
    html = html_of(sales_client.get(LIST, {"cols": ["", "close", "tags", "value"]}, **HTMX))
    assert headers(html)[:1] == ["Name"]
    assert "Stage" not in headers(html) and "Source" not in headers(html)
    assert {"Value", "Expected close", "Tags"} <= set(headers(html))
    assert 'data-label="Expected close"' in html
    assert 'data-label="Stage"' not in html


def test_the_default_columns_need_no_parameter(sales_client):
    html = html_of(sales_client.get(LIST))
    assert headers(html) == ["Name", "Source", "Stage", "Status", "Value", "Owner", "Updated"]


def test_sorting_by_expected_close_links_from_its_header(sales_client):
    html = html_of(sales_client.get(LIST, {"cols": ["", "close"], "sort": "close"}))
    assert re.search(r'<th scope="col" aria-sort="ascending"><a [^>]*>Expected close</a>', html)
    assert "sort=-close" in html


def test_a_saved_view_remembers_filters_and_columns(sales_client):
    response = sales_client.post(
        reverse("saved_views:save"),
        {
            "name": "Closing soon",
            "closing": "month",
            "value_min": "1000",
            "cols": ["", "value", "close"],
        },
        **HTMX,
    )
    html = html_of(response)
    link = re.search(r'<a href="(/deals/\?[^"]+)"[^>]*>Closing soon</a>', html).group(1)
    link = link.replace("&amp;", "&")
    assert "closing=month" in link and "value_min=1000" in link
    page = html_of(sales_client.get(link))
    assert headers(page) == ["Name", "Value", "Expected close"]
    assert 'id="filter-closing" name="closing" value="month" checked' in page


def test_export_streams_every_matching_row_with_the_shown_columns(sales_client):
    filters = DealFilters(status="open")
    total = deal_list(filters=filters).total_count
    page = html_of(sales_client.get(LIST, {"status": "open"}))
    assert 'href="/deals/export.csv?status=open"' in page

    response = sales_client.get("/deals/export.csv", {"status": "open", "cols": ["", "status"]})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="deals-')
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0] == ["Name", "Status"]
    assert len(table) - 1 == total > 25  # every row, not one page
    assert {row[1] for row in table[1:]} == {"Open"}


def test_export_needs_a_login(client, connections):
    response = client.get("/deals/export.csv")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_owner_link_form_picks_a_staff_member_by_name(connections):
    user = User.objects.create_user("rep")
    member = reference_load(connections["stora"]).staff[1]
    form = OwnerLinkForm(
        data={"owner": f"{connections['stora'].pk}:{member.value}"},
        instance=OwnerLink(user=user),
    )
    assert form.is_valid(), form.errors
    link = form.save()
    assert (link.connection, link.owner_id, link.owner_name) == (
        connections["stora"],
        member.value,
        member.label,
    )


def test_owner_link_form_takes_a_typed_owner_id_for_a_source_without_staff(connections):
    user = User.objects.create_user("rep")
    form = OwnerLinkForm(
        data={"connection": connections["nodestash"].pk, "typed_owner_id": "usr_42"},
        instance=OwnerLink(user=user),
    )
    assert form.is_valid(), form.errors
    assert form.save().owner_id == "usr_42"
    half = OwnerLinkForm(data={"typed_owner_id": "usr_42"}, instance=OwnerLink(user=user))
    assert not half.is_valid()


def test_the_user_admin_page_has_the_owner_links(admin_client, connections):
    user = User.objects.create_user("rep")
    html = html_of(admin_client.get(reverse("admin:auth_user_change", args=[user.pk])))
    assert "Deal owner in each source (for “My deals”)" in html
    member = reference_load(connections["stora"]).staff[0]
    assert f'value="{connections["stora"].pk}:{member.value}"' in html


def test_back_to_deals_keeps_the_sharper_filters_and_columns(sales_client):
    html = html_of(sales_client.get(LIST, {"value_min": "1", "cols": ["", "value", "close"]}))
    detail = re.search(r'<td class="cell-name" data-label="Name"><a href="([^"]+)"', html).group(1)
    page = html_of(sales_client.get(detail.replace("&amp;", "&")))
    back = re.search(r'<a href="([^"]*)">← Back to deals</a>', page).group(1)
    assert back == "/deals/?value_min=1&amp;cols=&amp;cols=value&amp;cols=close"


def test_cached_list_figures_tell_the_sharper_filters_and_users_apart(connections):
    everything = deal_list(filters=DealFilters(), page_size=5)
    some = deal_list(filters=DealFilters(value_min="20000"), page_size=5)
    assert 0 < some.total_count < everything.total_count

    staff = reference_load(connections["stora"]).staff
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    OwnerLink.objects.create(user=alice, connection=connections["stora"], owner_id=staff[0].value)
    OwnerLink.objects.create(user=bob, connection=connections["stora"], owner_id=staff[1].value)
    mine = DealFilters(owner="me")
    alices = deal_list_for(mine, alice)
    bobs = deal_list_for(mine, bob)
    assert {d.owner.name for d in alices.deals} == {staff[0].label}
    assert {d.owner.name for d in bobs.deals} == {staff[1].label}


def deal_list_for(filters: DealFilters, user):
    return services.deal_list(filters=filters, page_size=100, user=user)


def test_the_value_filter_offers_the_stored_currencies(sales_client):
    currencies = {m.currency for m in deal_list(filters=DealFilters()).totals}
    assert len(currencies) > 1
    html = html_of(sales_client.get(LIST))
    for code in currencies:
        assert f'<option value="{code}">{code}</option>' in html
