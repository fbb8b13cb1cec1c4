"""The one table of upstream problems: every page, alert and admin result reads it."""

from __future__ import annotations

import re
from pathlib import Path

from dealdesk.deals.listing import source_error_for
from dealdesk.deals.problems import (
    PROBLEMS,
    connection_test_words,
    problem_status,
    problem_words,
    swap_statuses,
)
from dealdesk.providers.base import (
    QUOTA_SPENT,
    WRITE_OUTCOME_UNKNOWN,
    AuthenticationFailed,
    Conflict,
    NotFound,
    RateLimited,
    Unavailable,
)

JS = Path(__file__).resolve().parents[2] / "static" / "js"


def test_htmx_swaps_exactly_the_statuses_the_table_answers_with_plus_form_errors():
    script = (JS / "dealdesk.js").read_text()
    swapped = re.search(r'code: "\^\(([0-9|]+)\)\$", swap: true, error: false', script)
    assert swapped is not None
    assert sorted(int(s) for s in swapped.group(1).split("|")) == sorted({400, *swap_statuses()})


def test_the_board_script_shows_the_same_statuses_in_place():
    script = (JS / "board.js").read_text()
    shown = re.search(r"/\^\(([0-9|]+)\)\$/\.test\(String\(xhr\.status\)\)", script)
    assert shown is not None
    assert sorted(int(s) for s in shown.group(1).split("|")) == sorted({400, *swap_statuses()})


def test_every_error_class_ends_at_a_row_and_the_catch_all_is_last():
    assert PROBLEMS[-1].code is None and PROBLEMS[-1].kind == "error"
    assert problem_status(Conflict("x", connection_label="Stora")) == 409


def test_a_rejected_key_reads_the_same_on_a_page_and_in_a_source_alert():
    error = AuthenticationFailed(connection_label="Acme")
    alert = source_error_for(slug="acme", label="Acme", error=error)
    assert alert.kind == "auth"
    assert (
        alert.message
        == problem_words(error)
        == ("Acme rejected the API key. An admin must update it.")
    )
    assert connection_test_words(error) == "key rejected — update the API key"


def test_rate_limits_say_when_to_try_again_everywhere():
    error = RateLimited("Slow down", retry_after=6.2, connection_label="Acme")
    assert problem_words(error) == "Acme is rate limiting DealDesk: try again in 7 s."
    assert source_error_for(slug="acme", label="Acme", error=error).retry_after == 7
    assert connection_test_words(error) == "rate limited — try again in 7 s"
    assert connection_test_words(RateLimited(connection_label="Acme")) == (
        "rate limited — try again shortly"
    )


def test_a_spent_quota_keeps_the_adapters_until_when():
    error = RateLimited("Acme's quota is spent until 14:00.", code=QUOTA_SPENT)
    assert problem_words(error, "Acme") == "Acme's quota is spent until 14:00."


def test_an_outage_adds_the_retry_hint_but_an_unknown_write_outcome_does_not():
    outage = Unavailable("Acme did not answer in time.", connection_label="Acme", code="timeout")
    assert problem_words(outage) == "Acme did not answer in time. Try again in a moment."
    unknown = Unavailable(
        "Acme did not confirm the change; reload to check.",
        connection_label="Acme",
        code=WRITE_OUTCOME_UNKNOWN,
    )
    assert problem_words(unknown) == "Acme did not confirm the change; reload to check."


def test_a_missing_deal_is_worded_by_the_table_not_the_adapter():
    error = NotFound("Acme has no such deal.", connection_label="Acme")
    assert problem_words(error) == "Acme no longer has this deal."
    assert problem_status(error) == 404
