"""Reading the sharper filters from a querystring: what is used, what is refused and why, and
the querystring a saved view or a page link writes back."""

from __future__ import annotations

from django.http import QueryDict

from dealdesk.deals.services import DealFilters
from dealdesk.listtools.filters import DEFAULT_COLUMNS, filter_problems, parse_amount, tags_parse


def filters_of(querystring: str) -> DealFilters:
    return DealFilters.from_querydict(QueryDict(querystring))


def test_amounts_accept_thousands_separators_and_two_decimals():
    assert str(parse_amount("1,500.50")) == "1500.50"
    assert str(parse_amount(" 20 000 ")) == "20000"
    for refused in ("abc", "-5", "1.234", "1e5", "", "10k"):
        assert parse_amount(refused) is None, refused


def test_min_above_max_is_refused_with_a_message_and_neither_is_used():
    assert filter_problems(QueryDict("value_min=500&value_max=100")) == {
        "value_max": "The maximum value is less than the minimum: swap them or fix one."
    }
    filters = filters_of("value_min=500&value_max=100")
    assert (filters.value_min, filters.value_max) == ("", "")


def test_malformed_and_impossible_dates_are_named():
    problems = filter_problems(QueryDict("close_from=30/11/2026&close_to=2026-02-30"))
    assert problems["close_from"].startswith("“30/11/2026” is not a date")
    assert problems["close_to"].startswith("“2026-02-30” is not a date")
    assert filters_of("close_from=30/11/2026").close_from == ""


def test_an_end_before_the_start_is_refused():
    problems = filter_problems(QueryDict("close_from=2026-12-01&close_to=2026-11-01"))
    assert "before the start" in problems["close_to"]


def test_good_values_raise_no_problem_and_round_trip_through_the_querystring():
    query = (
        "owner=stora:staff_1&value_min=1000&value_max=5000&currency=eur&close_from=2026-11-01"
        "&close_to=2026-12-31&closing=month&tags=vip,+Renewal,+vip&sort=-close"
        "&cols=&cols=close&cols=value"
    )
    assert filter_problems(QueryDict(query)) == {}
    filters = filters_of(query)
    assert filters.currency == "EUR"
    assert filters.tags == "vip, Renewal"
    assert filters.cols == ("value", "close")  # the table's order, whatever the order sent
    assert filters_of(filters.to_querystring()) == filters


def test_columns_default_without_a_cols_key_and_can_all_be_hidden():
    assert filters_of("").cols == DEFAULT_COLUMNS
    assert filters_of("").to_querystring() == ""
    hidden = filters_of("cols=")
    assert hidden.cols == ()
    assert hidden.to_querystring() == "cols="


def test_unknown_values_are_dropped():
    filters = filters_of("owner=<script>&closing=year&currency=euros&sort=close-ish&cols=&cols=x")
    assert (filters.owner, filters.closing, filters.currency, filters.sort) == (
        "",
        "",
        "",
        "-updated",
    )
    assert filters.cols == ()


def test_tags_are_trimmed_deduplicated_and_capped():
    assert tags_parse(" a ,A, b,,c,d,e,f,g") == ("a", "b", "c", "d", "e")
