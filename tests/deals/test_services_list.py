"""deal_list against the sandbox over real HTTP: merge, concurrency, pagination, source errors."""

from __future__ import annotations

import time

import pytest
from django.http import QueryDict

from dealdesk.deals.listing import encode_cursor
from dealdesk.deals.services import DealFilters, deal_list, source_options
from dealdesk.providers import adapter_for
from dealdesk.providers.base import DealQuery

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rate_limits_off(no_rate_limits):
    """These tests list many pages in a second; the rate-limit tests below inject their 429s
    (or switch the client budget back on) themselves."""


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
    """Every page from the first, following next_cursor; returns the pages."""
    pages, cursor = [], None
    for _ in range(100):
        page = deal_list(filters=filters, cursor=cursor, page_size=page_size)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("next_cursor never ended")


def keys(deals):
    return [deal.key for deal in deals]


# --- Merge and order -----------------------------------------------------------------------


def test_first_page_merges_both_sources_most_recently_updated_first(connections):
    page = deal_list(filters=DealFilters(), page_size=25)

    assert len(page.deals) == 25
    assert {d.connection_slug for d in page.deals} == {"stora", "nodestash"}
    stamps = [d.updated_at for d in page.deals]
    assert stamps == sorted(stamps, reverse=True)
    assert (page.start_index, page.end_index) == (1, 25)
    assert page.prev_cursor is None
    assert page.next_cursor
    assert page.errors == []
    assert {s.slug for s in page.sources} == {"nodestash", "stora"}
    assert page.stage_choices == []


def test_totals_are_per_currency_over_the_page(connections):
    page = deal_list(filters=DealFilters(source="nodestash"), page_size=25)

    expected: dict[str, object] = {}
    for deal in page.deals:
        if deal.value is not None:
            cur = deal.value.currency
            expected[cur] = expected.get(cur, 0) + deal.value.amount
    assert {m.currency: m.amount for m in page.totals} == expected
    assert page.totals, "the nodestash seed has deals with values"


def test_walking_next_cursor_shows_every_deal_once(connections, stora_info, nodestash_info):
    expected = all_deals(stora_info, nodestash_info)

    pages = walk(DealFilters(), page_size=10)

    shown = [d for page in pages for d in page.deals]
    assert len(shown) == len(set(keys(shown)))  # no duplicates
    assert set(keys(shown)) == set(keys(expected))  # none missing
    stamps = [d.updated_at for d in shown]
    assert stamps == sorted(stamps, reverse=True)  # one order across page boundaries
    assert [p.start_index for p in pages if p.deals] == list(range(1, len(shown) + 1, 10))
    assert pages[-1].end_index == len(shown)


def test_walking_oldest_first_shows_every_deal_once(connections, stora_info, nodestash_info):
    expected = all_deals(stora_info, nodestash_info)

    shown = [d for page in walk(DealFilters(sort="updated"), page_size=10) for d in page.deals]

    assert sorted(keys(shown)) == sorted(keys(expected))
    stamps = [d.updated_at for d in shown]
    assert stamps == sorted(stamps)


def test_walking_with_a_status_filter_shows_exactly_the_matching_deals(
    connections, stora_info, nodestash_info
):
    expected = [d for d in all_deals(stora_info, nodestash_info) if d.status == "won"]
    assert {d.connection_slug for d in expected} == {"stora", "nodestash"}

    shown = [d for page in walk(DealFilters(status="won"), page_size=10) for d in page.deals]

    assert sorted(keys(shown)) == sorted(keys(expected))
    assert all(d.status == "won" for d in shown)


def test_walking_sorted_by_name_shows_every_deal_once_in_name_order(
    connections, stora_info, nodestash_info
):
    expected = all_deals(stora_info, nodestash_info)

    pages = walk(DealFilters(sort="name"), page_size=10)

    shown = [d for page in pages for d in page.deals]
    assert sorted(keys(shown)) == sorted(keys(expected))
    names = [d.name.casefold() for d in shown]
    assert names == sorted(names)


def test_sorting_by_name_reuses_the_cached_sorted_list_for_later_pages(connections, sandbox):
    first = deal_list(filters=DealFilters(sort="-name"), page_size=10)
    sandbox.clear_log()

    second = deal_list(filters=DealFilters(sort="-name"), cursor=first.next_cursor, page_size=10)

    assert sandbox.requests() == []
    assert second.start_index == 11
    assert not set(keys(first.deals)) & set(keys(second.deals))
    names = [d.name.casefold() for d in first.deals + second.deals]
    assert names == sorted(names, reverse=True)


def test_value_sort_puts_numeric_values_in_order_and_stora_free_text_after(
    connections, stora_info, nodestash_info
):
    expected = all_deals(stora_info, nodestash_info)

    shown = [d for page in walk(DealFilters(sort="-value"), page_size=10) for d in page.deals]

    assert sorted(keys(shown)) == sorted(keys(expected))
    valued = [d for d in shown if d.value is not None]
    amounts = [d.value.amount for d in valued]
    assert amounts == sorted(amounts, reverse=True)
    first_stora = next(i for i, d in enumerate(shown) if d.connection_slug == "stora")
    assert all(d.value is None for d in shown[first_stora:])


def test_previous_goes_back_to_the_same_pages(connections):
    filters = DealFilters()
    first = deal_list(filters=filters, page_size=10)
    second = deal_list(filters=filters, cursor=first.next_cursor, page_size=10)
    third = deal_list(filters=filters, cursor=second.next_cursor, page_size=10)

    back_to_second = deal_list(filters=filters, cursor=third.prev_cursor, page_size=10)
    assert keys(back_to_second.deals) == keys(second.deals)
    assert back_to_second.start_index == 11

    assert back_to_second.prev_cursor == ""  # "" means the first page
    back_to_first = deal_list(filters=filters, cursor=back_to_second.prev_cursor, page_size=10)
    assert keys(back_to_first.deals) == keys(first.deals)
    assert back_to_first.prev_cursor is None


def test_previous_works_when_sorted_by_name(connections):
    filters = DealFilters(sort="name")
    first = deal_list(filters=filters, page_size=10)
    second = deal_list(filters=filters, cursor=first.next_cursor, page_size=10)
    third = deal_list(filters=filters, cursor=second.next_cursor, page_size=10)

    back = deal_list(filters=filters, cursor=third.prev_cursor, page_size=10)

    assert keys(back.deals) == keys(second.deals)
    assert second.prev_cursor == ""


def test_a_cursor_from_other_filters_or_garbage_starts_at_the_first_page(connections):
    first = deal_list(filters=DealFilters(), page_size=10)
    second = deal_list(filters=DealFilters(), cursor=first.next_cursor, page_size=10)

    other = deal_list(filters=DealFilters(status="open"), cursor=second.next_cursor, page_size=10)
    garbage = deal_list(filters=DealFilters(), cursor="not-a-cursor!", page_size=10)
    wrong_version = deal_list(filters=DealFilters(), cursor=encode_cursor({"v": 99}), page_size=10)

    assert other.start_index == 1
    assert keys(garbage.deals) == keys(first.deals)
    assert keys(wrong_version.deals) == keys(first.deals)


# --- Filters ---------------------------------------------------------------------------------


def test_search_is_applied_to_both_sources_and_rechecked_locally(
    connections, sandbox, stora_info, nodestash_info
):
    expected = all_deals(stora_info, nodestash_info)
    word = expected[0].name.split()[0]
    matching = [d for d in expected if word.casefold() in d.name.casefold()]

    page = deal_list(filters=DealFilters(q=word.upper()), page_size=100)

    assert sorted(keys(page.deals)) == sorted(keys(matching))
    stora_lists = [r for r in sandbox.requests("stora") if r.path == "/2025-09/deals"]
    assert stora_lists[-1].query["search"] == [word.upper()]  # pushed upstream where possible


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


# --- Cost and concurrency --------------------------------------------------------------------


def test_sources_are_called_concurrently(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=25)  # warms the reference data
    sandbox.clear_log()
    sandbox.set_latency("all", 300)

    started = time.monotonic()
    page = deal_list(filters=DealFilters(), page_size=25)
    elapsed = time.monotonic() - started

    assert page.errors == []
    assert elapsed < 0.3 * 1.6
    (stora,) = sandbox.requests("stora")
    (nodestash,) = sandbox.requests("nodestash")
    assert stora.started < nodestash.finished and nodestash.started < stora.finished


def test_a_warm_list_costs_one_upstream_call_per_source(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=25)
    sandbox.clear_log()

    deal_list(filters=DealFilters(), page_size=25)

    assert [(r.method, r.path) for r in sandbox.requests("stora")] == [("GET", "/2025-09/deals")]
    assert [(r.method, r.path) for r in sandbox.requests("nodestash")] == [("GET", "/v1/deals")]


def test_a_page_fetches_only_what_it_needs(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=5)
    sandbox.clear_log()

    deal_list(filters=DealFilters(), page_size=5)

    for request in sandbox.requests():
        assert int(request.query["limit"][0]) <= 10


def test_a_filter_only_nodestash_cannot_do_keeps_fetching_until_the_page_is_full(
    connections, sandbox, nodestash_info
):
    lost = [d for d in all_deals(nodestash_info) if d.status == "lost"]
    sandbox.clear_log()

    page = deal_list(filters=DealFilters(source="nodestash", status="lost"), page_size=3)

    assert len(page.deals) == min(3, len(lost))
    assert keys(page.deals) == keys(lost[:3]) or all(d.status == "lost" for d in page.deals)
    assert len([r for r in sandbox.requests("nodestash") if r.path == "/v1/deals"]) <= 5


# --- One source failing ----------------------------------------------------------------------


def only_error(page, slug):
    (error,) = page.errors
    assert error.connection_slug == slug
    return error


def test_a_rejected_key_is_a_source_error_and_the_other_source_still_lists(connections):
    connections["stora"].set_api_key("wrong-key")
    connections["stora"].save()

    page = deal_list(filters=DealFilters(), page_size=25)

    error = only_error(page, "stora")
    assert error.kind == "auth"
    assert error.message == "Stora rejected the API key — an admin must update it."
    assert page.deals and {d.connection_slug for d in page.deals} == {"nodestash"}


def test_upstream_rate_limiting_is_a_source_error_with_the_wait(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=10)  # warm: the next call is the list itself
    sandbox.fail_next(
        "nodestash",
        1,
        429,
        body={"error": {"code": "RATE_LIMITED", "message": "Slow down", "retry_after": 12}},
        headers={"Retry-After": "12"},
    )

    page = deal_list(filters=DealFilters(), page_size=10)

    error = only_error(page, "nodestash")
    assert error.kind == "rate_limited"
    assert error.retry_after == 12
    assert error.message == "nodestash is rate limiting DealDesk — try again in 12 s."
    assert {d.connection_slug for d in page.deals} == {"stora"}


def test_stora_rate_limiting_reads_the_reset_header(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=10)
    reset = int(time.time()) + 12
    sandbox.fail_next(
        "stora",
        1,
        429,
        body={"error": {"code": "too_many_requests", "message": "Too many requests"}},
        headers={"RateLimit-Limit": "60", "RateLimit-Reset": str(reset)},
    )

    page = deal_list(filters=DealFilters(), page_size=10)

    error = only_error(page, "stora")
    assert error.kind == "rate_limited"
    assert error.retry_after in (11, 12, 13)
    assert error.message == f"Stora is rate limiting DealDesk — try again in {error.retry_after} s."


def test_the_client_side_rate_budget_is_a_source_error_before_any_call(
    connections, sandbox, stora_info, settings
):
    settings.DEALDESK_CLIENT_RATE_LIMITS = True
    deal_list(filters=DealFilters(), page_size=10)  # cold: reference data for both sources
    time.sleep(2 - time.time() % 1)  # two seconds on: the warm-up's calls have slid out
    budget = adapter_for(stora_info).transport.budget
    with pytest.raises(Exception):  # noqa: B017 - spend Stora's per-second budget to the end
        for _ in range(20):
            budget.spend(connection_label="Stora")
    sandbox.clear_log()

    page = deal_list(filters=DealFilters(), page_size=10)

    error = only_error(page, "stora")
    assert error.kind == "rate_limited"
    assert error.message.startswith("DealDesk paused calls to Stora to stay under its rate limit")
    assert sandbox.requests("stora") == []
    assert {d.connection_slug for d in page.deals} == {"nodestash"}


def test_a_server_error_is_a_source_error(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=10)
    sandbox.fail_next("stora", 1, 500, body={"error": {"code": "internal_server_error"}})

    page = deal_list(filters=DealFilters(), page_size=10)

    error = only_error(page, "stora")
    assert (error.kind, error.message) == ("unavailable", "Stora is unavailable right now.")
    assert {d.connection_slug for d in page.deals} == {"nodestash"}


def test_an_outage_is_a_source_error(connections, sandbox):
    deal_list(filters=DealFilters(), page_size=10)
    sandbox.set_outage("nodestash", True)

    page = deal_list(filters=DealFilters(), page_size=10)

    error = only_error(page, "nodestash")
    assert (error.kind, error.message) == ("unavailable", "nodestash is unavailable right now.")
    assert len(page.deals) == 10 and {d.connection_slug for d in page.deals} == {"stora"}
    assert page.next_cursor


def test_an_undecryptable_key_is_an_auth_source_error(connections, sandbox):
    connections["nodestash"].api_key_encrypted = "stored-under-another-key"
    connections["nodestash"].save()

    page = deal_list(filters=DealFilters(), page_size=10)

    error = only_error(page, "nodestash")
    assert error.kind == "auth"
    assert error.message == (
        "cannot decrypt the stored key of nodestash; an admin must enter it again."
    )
    assert sandbox.requests("nodestash") == []
    assert {d.connection_slug for d in page.deals} == {"stora"}


def test_sorting_by_name_with_an_unusable_source_still_caches_and_reports_it(connections, sandbox):
    connections["nodestash"].api_key_encrypted = "stored-under-another-key"
    connections["nodestash"].save()
    first = deal_list(filters=DealFilters(sort="name"), page_size=10)
    sandbox.clear_log()

    second = deal_list(filters=DealFilters(sort="name"), cursor=first.next_cursor, page_size=10)

    assert sandbox.requests() == []
    assert [e.kind for e in first.errors] == [e.kind for e in second.errors] == ["auth"]
    assert {d.connection_slug for d in first.deals + second.deals} == {"stora"}


def test_a_page_stops_after_five_calls_per_source_with_a_short_page_and_a_next_cursor(
    connections, sandbox, nodestash_info
):
    everything = sorted(all_deals(nodestash_info), key=lambda d: d.updated_at, reverse=True)
    oldest = everything[-1]
    assert [d for d in everything if oldest.name.casefold() in d.name.casefold()] == [oldest]
    filters = DealFilters(source="nodestash", q=oldest.name)
    sandbox.clear_log()

    short = deal_list(filters=filters, page_size=2)  # 5 calls of 6 rows cannot reach it

    assert short.deals == [] and short.next_cursor
    assert len([r for r in sandbox.requests("nodestash") if r.path == "/v1/deals"]) == 5
    rest = deal_list(filters=filters, cursor=short.next_cursor, page_size=2)
    assert keys(rest.deals) == [oldest.key]
    assert rest.next_cursor is None
