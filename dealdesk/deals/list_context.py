"""What the list and detail pages add to their context for this issue's features: stale markers,
saved views, bulk action choices, and the list order the detail page's Previous and Next follow.
Kept apart from ``views.py`` so those views change by one line each."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from dealdesk.deals import services
from dealdesk.deals.bulk import ACTIONS, bulk_choices
from dealdesk.deals.deal_nav import deal_nav_neighbours, deal_nav_remember
from dealdesk.deals.roles import can_edit_deals
from dealdesk.deals.saved_views import saved_view_list
from dealdesk.deals.stale import stale_thresholds


def list_extras(
    request: HttpRequest,
    filters: services.DealFilters,
    result: services.DealListResult,
    current_query: str | None,
) -> dict[str, Any]:
    """Context the list page adds to its filters and rows."""
    deal_nav_remember(request.session, current_query or "", [d.key for d in result.deals])
    can_edit = can_edit_deals(request.user)
    return {
        "stale": stale_thresholds(),
        "saved_views": saved_view_list(user=request.user),
        "save_query": filters.to_querystring(),
        "can_edit": can_edit,
        "bulk": bulk_choices() if can_edit and result.deals else None,
        "bulk_actions": ACTIONS,
    }


def detail_extras(request: HttpRequest, deal, back_query: str) -> dict[str, Any]:
    """Previous and Next on the detail page, from the list page the user came from."""
    previous, following = deal_nav_neighbours(request.session, back_query, deal.key)
    return {"nav_previous": previous, "nav_next": following}
