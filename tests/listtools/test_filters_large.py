"""Each sharper filter, the close-date sort, the totals and the CSV export against a store of
10,000 deals per source (filled once for the module, ``large_store.py``). Expected rows are
computed in Python from the deals that were stored, never from the query under test."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.http import QueryDict

from dealdesk.deals.selectors import deal_list, deal_queryset
from dealdesk.deals.services import DealFilters
from dealdesk.listtools.export import export_lines
from dealdesk.listtools.filters import OwnerKey, month_bounds
from dealdesk.listtools.selectors import deal_export_rows
from tests.listtools.large_store import (
    OWNER_IDS,
    PER_SOURCE,
    STAFF,
    empty_large_store,
    fill_large_store,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def store(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        filled = fill_large_store()
    yield filled
    with django_db_blocker.unblock():
        empty_large_store(filled)


def keys_of(store, filters: DealFilters, owner_keys=()) -> set[str]:
    rows = deal_queryset(filters=filters, connections=store.connections, owner_keys=owner_keys)
    pairs = rows.values_list("connection__slug", "upstream_id")
    return {f"{slug}:{deal_id}" for slug, deal_id in pairs}


def expected(store, keep) -> set[str]:
    return {deal.key for deal in store.deals if keep(deal)}


def parsed(**values) -> DealFilters:
    """Filters as the list page reads them from its querystring."""
    query = QueryDict(mutable=True)
    for name, value in values.items():
        if isinstance(value, list):
            query.setlist(name, value)
        else:
            query[name] = value
    return DealFilters.from_querydict(query)


def test_the_plain_list_holds_every_deal_of_both_sources(store):
    page = deal_list(filters=DealFilters(), page_size=25)
    assert page.total_count == 2 * PER_SOURCE
    assert len(page.deals) == 25


def test_owner_filter_keeps_one_staff_members_deals(store):
    staff = STAFF[3]
    found = keys_of(store, parsed(owner=f"stora:{staff.value}"))
    assert found == expected(store, lambda d: d.owner is not None and d.owner.id == staff.value)
    assert len(found) > 1000


def test_my_deals_are_the_deals_of_every_owner_the_user_is_linked_to(store):
    mine = [
        OwnerKey(store.stora.pk, STAFF[1].value),
        OwnerKey(store.nodestash.pk, OWNER_IDS[2]),  # an owner id that names nobody
    ]
    found = keys_of(store, parsed(owner="me"), owner_keys=mine)
    assert found == expected(
        store,
        lambda d: (
            (d.owner is not None and d.owner.id == STAFF[1].value) or d.owner_id == OWNER_IDS[2]
        ),
    )
    assert {key.split(":")[0] for key in found} == {"stora", "nodestash"}


def test_my_deals_without_any_owner_link_matches_nothing(store):
    assert keys_of(store, parsed(owner="me")) == set()
    assert deal_list(filters=parsed(owner="me")).total_count == 0


def test_value_range_is_inclusive_and_never_matches_a_value_in_words(store):
    found = keys_of(store, parsed(value_min="10,000", value_max="20000"))
    assert found == expected(
        store, lambda d: d.value is not None and Decimal(10000) <= d.value.amount <= 20000
    )
    assert found and all(key.startswith("nodestash:") for key in found)
    # A text value that reads like a number ("1000") is still text: no range matches it.
    assert not keys_of(store, parsed(value_min="999", value_max="1001")) & expected(
        store, lambda d: d.value_text == "1000"
    )


def test_value_range_in_one_currency(store):
    found = keys_of(store, parsed(value_min="5000", currency="usd"))
    assert found == expected(
        store,
        lambda d: d.value is not None and d.value.currency == "USD" and d.value.amount >= 5000,
    )


def test_min_above_max_applies_neither_bound(store):
    filters = parsed(value_min="5000", value_max="100")
    assert (filters.value_min, filters.value_max) == ("", "")
    assert deal_list(filters=filters).total_count == 2 * PER_SOURCE


def test_expected_close_range_is_inclusive_and_leaves_out_deals_without_a_date(store):
    start, end = store.today - dt.timedelta(days=10), store.today + dt.timedelta(days=20)
    found = keys_of(store, parsed(close_from=start.isoformat(), close_to=end.isoformat()))
    assert found == expected(
        store,
        lambda d: d.expected_close_date is not None and start <= d.expected_close_date <= end,
    )
    only_from = keys_of(store, parsed(close_from=end.isoformat()))
    assert only_from == expected(
        store, lambda d: d.expected_close_date is not None and d.expected_close_date >= end
    )


def test_closing_this_month_is_the_current_calendar_month(store):
    first, last = month_bounds(store.today)
    found = keys_of(store, parsed(closing="month"))
    assert found == expected(
        store,
        lambda d: d.expected_close_date is not None and first <= d.expected_close_date <= last,
    )
    assert found


def test_tag_filter_matches_whole_tags_in_any_case(store):
    found = keys_of(store, parsed(tags="vip"))
    assert found == expected(store, lambda d: any(t.casefold() == "vip" for t in d.tags))
    assert not found & expected(store, lambda d: d.tags == ("vip-plus",))


def test_several_tags_must_all_be_on_the_deal(store):
    found = keys_of(store, parsed(tags="renewal, VIP"))
    assert found == expected(store, lambda d: {t.casefold() for t in d.tags} >= {"vip", "renewal"})
    assert found


def test_a_tag_with_accents_matches(store):
    found = keys_of(store, parsed(tags="Café"))
    assert found == expected(store, lambda d: "café" in d.tags)
    assert found


def test_filters_combine_with_each_other_and_with_status(store):
    first, last = month_bounds(store.today)
    filters = parsed(status="open", value_min="1000", closing="month", tags="renewal")
    found = keys_of(store, filters)
    assert found == expected(
        store,
        lambda d: (
            d.status == "open"
            and d.value is not None
            and d.value.amount >= 1000
            and d.expected_close_date is not None
            and first <= d.expected_close_date <= last
            and "renewal" in {t.casefold() for t in d.tags}
        ),
    )


def dated_deal(deal) -> bool:
    return deal.expected_close_date is not None


def _close_order(store, sort: str) -> list[tuple]:
    rows = deal_queryset(filters=parsed(sort=sort), connections=store.connections)
    return list(rows.values_list("expected_close_date", "name_sort"))


def test_sort_by_expected_close_soonest_first_with_undated_deals_last(store):
    order = _close_order(store, "close")
    dated = [(d.expected_close_date, d.name.casefold()) for d in store.deals if dated_deal(d)]
    undated = sorted(d.name.casefold() for d in store.deals if d.expected_close_date is None)
    assert order == sorted(dated) + [(None, name) for name in undated]


def test_sort_by_expected_close_latest_first_still_puts_undated_deals_last(store):
    order = _close_order(store, "-close")
    dated = [(d.expected_close_date, d.name.casefold()) for d in store.deals if dated_deal(d)]
    dated.sort(key=lambda pair: pair[1])
    dated.sort(key=lambda pair: pair[0], reverse=True)  # stable: names ascending within a date
    undated = sorted(d.name.casefold() for d in store.deals if d.expected_close_date is None)
    assert order == dated + [(None, name) for name in undated]


def test_totals_sum_and_count_every_matching_deal_per_currency(store):
    filters = parsed(status="open")
    page = deal_list(filters=filters, page_size=25)
    sums: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    for deal in store.deals:
        if deal.status == "open" and deal.value is not None:
            currency = deal.value.currency
            sums[currency] = sums.get(currency, Decimal(0)) + deal.value.amount
            counts[currency] = counts.get(currency, 0) + 1
    assert {t.money.currency: t.money.amount for t in page.currency_totals} == sums
    assert {t.money.currency: t.count for t in page.currency_totals} == counts
    assert [m.currency for m in page.totals] == sorted(sums)
    assert page.text_value_count == sum(
        1 for d in store.deals if d.status == "open" and d.value is None and d.value_text
    )
    assert len(page.deals) == 25  # the totals are not the page's


def test_export_has_every_row_in_the_lists_order(store):
    filters = parsed(sort="close", value_min="100", cols=["", "value", "close"])
    listed = deal_queryset(filters=filters, connections=store.connections)
    names = list(listed.values_list("name", flat=True))

    lines = list(export_lines(deal_export_rows(filters=filters), filters.cols))
    table = list(csv.reader(io.StringIO("".join(lines).lstrip("\ufeff"))))

    assert table[0] == ["Name", "Value", "Currency", "Value in words", "Expected close"]
    assert len(table) - 1 == len(names) > 100
    assert [row[0] for row in table[1:]] == names


def test_export_neutralises_cells_a_spreadsheet_would_run(store):
    filters = parsed(source="stora", q="=hyperlink")
    table = list(
        csv.reader(io.StringIO("".join(export_lines(deal_export_rows(filters=filters), ()))))
    )
    assert table[1] == ['\'=HYPERLINK("http://x")']
    names = [
        row[0]
        for row in csv.reader(
            io.StringIO("".join(export_lines(deal_export_rows(filters=parsed(source="stora")), ())))
        )
    ]
    assert {"'+1 call back", "'-minus", "'@mention"} <= set(names)
