"""What the list tools add to the deal list's and deal page's context: stale markers, saved
views, bulk action choices, and the list order the deal page's Previous and Next follow."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from dealdesk.deals import services
from dealdesk.deals.roles import can_edit_deals
from dealdesk.deals.stale import stale_thresholds
from dealdesk.listtools.bulk import ACTIONS, bulk_choices
from dealdesk.listtools.filters import CLOSING_MONTH, COLUMNS, OWNER_ME, filter_problems
from dealdesk.listtools.navigation import (
    Neighbour,
    PageStep,
    deal_nav_neighbours,
    deal_nav_remember,
)
from dealdesk.listtools.saved_views import saved_view_list
from dealdesk.listtools.selectors import currency_choices, owner_choices, owner_links_for


def list_extras(
    request: HttpRequest,
    filters: services.DealFilters,
    result: services.DealListResult,
    current_query: str | None,
    *,
    next_query: str | None = None,
    prev_query: str | None = None,
) -> dict[str, Any]:
    """Context the list page adds to its filters and rows."""
    deal_nav_remember(
        request.session,
        current_query or "",
        services.deal_keys(result.deals),
        next_query=next_query,
        prev_query=prev_query,
    )
    can_edit = can_edit_deals(request.user)
    return {
        "stale": stale_thresholds(),
        "saved_views": saved_view_list(user=request.user),
        "save_query": filters.to_querystring(),
        "can_edit": can_edit,
        "bulk": bulk_choices(result) if can_edit and result.deals else None,
        "bulk_actions": ACTIONS,
        **sharp_list_extras(request, filters, result),
    }


def sharp_list_extras(
    request: HttpRequest,
    filters: services.DealFilters,
    listed: services.DealListResult | None = None,
) -> dict[str, Any]:
    """The sharper filters' choices, typed values and problems, the column chooser, and the
    CSV export's link (the same filters and sort as the page). ``listed``: the list page's
    result, whose connections and reference data the owner choices reuse."""
    problems = filter_problems(request.GET)
    typed = {
        name: request.GET.get(name, "")[:300]
        for name in ("value_min", "value_max", "close_from", "close_to", "tags")
    }
    shown = set(filters.cols)
    return {
        "filter_problems": problems,
        "more_filters_open": bool(problems),
        "typed": typed,
        "owner_groups": owner_choices(listed.connections, reference=listed.reference_for)
        if listed is not None and listed.connections
        else owner_choices(),
        "owner_me": OWNER_ME,
        "owner_unlinked": filters.owner == OWNER_ME and not owner_links_for(request.user),
        "currencies": currency_choices(version=listed.store_version if listed else None),
        "shown": {name: name in shown for name in COLUMNS},
        "column_links": [
            {
                "label": label,
                "shown": name in shown,
                "query": filters.to_querystring(
                    cols=tuple(c for c in COLUMNS if (c in shown) != (c == name))
                ),
            }
            for name, label in COLUMNS.items()
        ],
        "export_query": filters.to_querystring(),
        "closing_month": CLOSING_MONTH,
    }


def detail_extras(request: HttpRequest, deal, back_query: str) -> dict[str, Any]:
    """Previous and Next on the detail page, from the list page the user came from."""
    previous, following = deal_nav_neighbours(request.session, back_query, deal.key)
    return {
        "nav_previous_url": _nav_url(previous, back_query),
        "nav_next_url": _nav_url(following, back_query),
    }


def _nav_url(step: Neighbour | PageStep | None, back_query: str) -> str:
    if isinstance(step, Neighbour):
        url = reverse("deals:detail", args=[step.connection_slug, step.deal_id])
        return f"{url}?{urlencode({'from': back_query})}" if back_query else url
    if isinstance(step, PageStep):
        return f"{reverse('deals:nav_step')}?{urlencode({'from': step.query, 'pick': step.pick})}"
    return ""
