"""The deal list read from the synced store: exact order, filters and totals over every deal,
page numbers, alerts per source, and no upstream call at all."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from dealdesk.deals.services import DealFilters, deal_list, source_options
from dealdesk.providers import adapter_for
from dealdesk.providers.base import DealQuery
from dealdesk.sync.models import SyncState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """The reference reads below walk every page straight through the adapters."""


def all_deals(*infos):
    """Every deal of the given connections, read straight through the adapters."""
    deals = []
    for info in infos:
        adapter = adapter_for(info)
        ref = adapter.reference_data()
        cursor = None
        while True:
            page = adapter.list_deals(DealQuery(), ref=ref, cursor=cursor, limit=100)
            deals.extend(page.deals)
            cursor = page.next_cursor
            if cursor is None:
                break
    return deals


def walk(filters: DealFilters, page_size: int = 10):
    """Every page from the first, following next_page; returns the pages."""
    pages, number = [], 1
    for _ in range(100):
        page = deal_list(filters=filters, page=number, page_size=page_size)
        pages.append(page)
        if page.next_page is None:
            return pages
        number = page.next_page
    raise AssertionError("next_page never ended")


def keys(deals):
    return [deal.key for deal in deals]


def test_first_page_merges_both_sources_most_recently_updated_first(connections, sandbox):
    page = deal_list(filters=DealFilters(), page_size=25)

    assert len(page.deals) == 25
    assert {d.connection_slug for d in page.deals} == {"stora", "nodestash"}
    stamps = [d.updated_at for d in page.deals]
    assert stamps == sorted(stamps, reverse=True)
    assert (page.start_index, page.end_index) == (1, 25)
    assert page.prev_page is None and page.next_page == 2
    assert page.errors == []
    assert {s.slug for s in page.sources} == {"nodestash", "stora"}
    assert page.stage_choices == []
    assert sandbox.requests() == []  # read from the store


def test_totals_are_per_currency_over_every_matching_deal_not_the_page(
    connections, nodestash_info, stora_info
):
    expected: dict[str, object] = {}
    for deal in all_deals(nodestash_info):
        if deal.value is not None:
            cur = deal.value.currency
            expected[cur] = expected.get(cur, 0) + deal.value.amount

    page = deal_list(filters=DealFilters(), page_size=5)

    assert {m.currency: m.amount for m in page.totals} == expected
    stora_texts = [d for d in all_deals(stora_info) if d.value_text]
    assert page.text_value_count == len(stora_texts) > 0
    assert page.total_count == len(all_deals(nodestash_info, stora_info))


def test_walking_pages_shows_every_deal_once_in_one_order(connections, stora_info, nodestash_info):
    expected = all_deals(stora_info, nodestash_info)

    pages = walk(DealFilters(), page_size=10)

    shown = [d for page in pages for d in page.deals]
    assert len(shown) == len(set(keys(shown)))
    assert set(keys(shown)) == set(keys(expected))
    stamps = [d.updated_at for d in shown]
    assert stamps == sorted(stamps, reverse=True)
    assert [p.start_index for p in pages if p.deals] == list(range(1, len(shown) + 1, 10))
    assert pages[-1].end_index == len(shown) == pages[0].total_count


def test_walking_oldest_first_shows_every_deal_once(connections, stora_info, nodestash_info):
    expected = all_deals(stora_info, nodestash_info)

    shown = [d for page in walk(DealFilters(sort="updated"), page_size=10) for d in page.deals]

    assert sorted(keys(shown)) == sorted(keys(expected))
    stamps = [d.updated_at for d in shown]
    assert stamps == sorted(stamps)


def test_a_status_filter_shows_exactly_the_matching_deals(connections, stora_info, nodestash_info):
    expected = [d for d in all_deals(stora_info, nodestash_info) if d.status == "won"]
    assert {d.connection_slug for d in expected} == {"stora", "nodestash"}

    shown = [d for page in walk(DealFilters(status="won"), page_size=10) for d in page.deals]

    assert sorted(keys(shown)) == sorted(keys(expected))


def test_sorting_by_name_is_exact_across_both_sources(connections, stora_info, nodestash_info):
    expected = all_deals(stora_info, nodestash_info)

    shown = [d for page in walk(DealFilters(sort="name"), page_size=10) for d in page.deals]

    assert sorted(keys(shown)) == sorted(keys(expected))
    names = [d.name.casefold() for d in shown]
    assert names == sorted(names)
    backwards = [d for page in walk(DealFilters(sort="-name"), page_size=10) for d in page.deals]
    assert [d.name.casefold() for d in backwards] == sorted(names, reverse=True)


def test_value_sort_puts_numeric_values_in_order_and_stora_free_text_after(
    connections, stora_info, nodestash_info
):
    shown = [d for page in walk(DealFilters(sort="-value"), page_size=10) for d in page.deals]

    valued = [d for d in shown if d.value is not None]
    amounts = [d.value.amount for d in valued]
    assert amounts == sorted(amounts, reverse=True)
    first_stora = next(i for i, d in enumerate(shown) if d.connection_slug == "stora")
    assert all(d.value is None for d in shown[first_stora:])


def test_a_page_number_past_the_end_shows_the_last_page(connections):
    first = deal_list(filters=DealFilters(), page=1, page_size=10)

    beyond = deal_list(filters=DealFilters(), page=999, page_size=10)

    assert beyond.page == first.page_count
    assert beyond.next_page is None and beyond.deals


def test_search_covers_name_contact_company_site_and_tags(connections, stora_info, nodestash_info):
    deals = all_deals(stora_info, nodestash_info)
    contact_deal = next(d for d in deals if d.contact and not d.contact.missing)
    tagged = next(d for d in deals if d.tags)
    site_deal = next(d for d in deals if d.site and not d.site.missing)

    for word, deal in (
        (contact_deal.contact.name.upper(), contact_deal),
        (tagged.tags[0], tagged),
        (site_deal.site.name, site_deal),
        (deals[0].name.split()[0].lower(), deals[0]),
    ):
        page = deal_list(filters=DealFilters(q=word), page_size=100)
        assert deal.key in keys(page.deals), word


def test_source_and_stage_filters_narrow_to_one_source(connections, stora_info):
    stora_deals = all_deals(stora_info)
    stage = next(d.stage for d in stora_deals if d.stage and d.stage.id)

    page = deal_list(filters=DealFilters(source="stora", stage=stage.id), page_size=100)

    in_stage = [d for d in stora_deals if d.stage and d.stage.id == stage.id]
    assert sorted(keys(page.deals)) == sorted(keys(in_stage))
    assert stage.id in [s.id for s in page.stage_choices]
    assert page.sources and len(page.sources) == 2


def test_an_unknown_source_lists_every_source(connections):
    page = deal_list(filters=DealFilters(source="nope"), page_size=50)

    assert {d.connection_slug for d in page.deals} == {"stora", "nodestash"}


def test_filters_from_a_querydict_are_tolerant_and_round_trip():
    filters = DealFilters.from_querydict(
        QueryDict("q=+storage+&status=won&sort=name&source=stora&stage=dstg_1&junk=1")
    )
    assert filters == DealFilters(
        q="storage", status="won", source="stora", stage="dstg_1", sort="name"
    )
    assert DealFilters.from_querydict(QueryDict("status=archived&sort=bogus")) == DealFilters()
    assert DealFilters.from_querydict(QueryDict("source=<script>")) == DealFilters()
    assert DealFilters().to_querystring() == ""
    assert filters.to_querystring(sort="-updated") == (
        "q=storage&status=won&source=stora&stage=dstg_1"
    )
    assert DealFilters.from_querydict(QueryDict(filters.to_querystring())) == filters


def test_source_options_lists_enabled_connections(connections):
    connections["stora"].enabled = False
    connections["stora"].save()

    assert [o.slug for o in source_options()] == ["nodestash"]


def test_a_failing_source_shows_its_alert_with_the_last_known_deals(connections, sandbox):
    from dealdesk.sync.engine import sync_run

    sandbox.set_outage("stora", True)
    sync_run(connections["stora"])

    page = deal_list(filters=DealFilters(), page_size=100)

    assert {d.connection_slug for d in page.deals} == {"stora", "nodestash"}
    (alert,) = page.errors
    assert alert.connection_slug == "stora"
    assert alert.message.startswith("Showing Stora deals as of ")
    assert "Stora cannot be reached" in alert.message


def test_a_source_never_synced_says_it_is_still_loading(connections):
    SyncState.objects.filter(connection=connections["nodestash"]).update(
        backfill_done=False, backfill_count=120, backfill_total=None, state="backfilling"
    )

    page = deal_list(filters=DealFilters(), page_size=10)

    (alert,) = page.errors
    assert alert.kind == "loading"
    assert alert.message == "nodestash deals are still loading: 120 so far."


def test_every_kind_of_source_alert_is_read_in_one_query(connections):
    """Loading, failing and lagging all come from the few health columns read at once (a
    column left out of the read would cost a query per source, on every page)."""
    import datetime as dt

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from dealdesk.deals.selectors import source_alerts

    long_ago = timezone.now() - dt.timedelta(days=2)
    SyncState.objects.filter(connection=connections["nodestash"]).update(
        backfill_done=False, backfill_count=120, backfill_total=900, state="backfilling"
    )
    SyncState.objects.filter(connection=connections["stora"]).update(
        last_success_at=long_ago,
        last_error="Stora rejected the API key.",
        last_error_kind="auth",
        last_error_at=long_ago + dt.timedelta(minutes=1),
    )
    with CaptureQueriesContext(connection) as queries:
        alerts = {a.connection_slug: a for a in source_alerts(connections.values())}
    assert len(queries.captured_queries) == 1
    assert alerts["nodestash"].message == "nodestash deals are still loading: 120 of 900 so far."
    assert alerts["stora"].kind == "auth"
    assert alerts["stora"].message == (
        "Showing Stora deals as of 2 days ago: Stora rejected the API key."
    )

    SyncState.objects.filter(connection=connections["stora"]).update(last_error="")
    with CaptureQueriesContext(connection) as queries:
        (lagging,) = [
            a for a in source_alerts(connections.values()) if a.connection_slug == "stora"
        ]
    assert len(queries.captured_queries) == 1
    assert lagging.kind == "stale"
    assert (
        lagging.message == "Showing Stora deals as of 2 days ago: Stora has not been synced since."
    )


def test_a_list_pages_deals_are_read_once_when_looked_at_and_skip_rows_gone_since():
    from dealdesk.deals.selectors import PageDeals, deal_keys
    from tests.deals.test_stale import a_deal

    loads: list[int] = []

    def load():
        loads.append(1)
        return {2: a_deal()}  # row 1 was removed after the page listed its ids

    page = PageDeals([1, 2], load)
    assert page and loads == []  # listed deals: true without reading them
    assert [d.key for d in page] == ["stora:d1"] and len(page) == 1 and page[0].id == "d1"
    assert deal_keys(page) == ["stora:d1"] and loads == [1]

    emptied = PageDeals([1], dict)
    assert emptied  # listed one...
    assert list(emptied) == [] and not emptied  # ...which was gone when read
