"""Deals of the demo seed, their page URLs and what the sandbox received, for the deal tests."""

from __future__ import annotations

from django.urls import reverse

from dealdesk.deals.services import DealFilters, deal_get, deal_list


def a_deal(source: str, status: str = "open", where=lambda detail: True):
    """A deal of the demo seed, read in full, that matches ``where``."""
    for deal in deal_list(filters=DealFilters(source=source, status=status), page_size=50).deals:
        detail = deal_get(connection_slug=source, deal_id=deal.id)
        if where(detail):
            return detail
    raise AssertionError(f"the demo seed has a matching {status} {source} deal")


def url(name: str, detail, *extra: str) -> str:
    """The URL named ``deals:<name>`` of the deal read in ``detail``."""
    return reverse(f"deals:{name}", args=[detail.connection.slug, detail.deal.id, *extra])


def writes(sandbox, provider: str):
    """What ``provider`` received other than reads, oldest first."""
    return [r for r in sandbox.requests(provider) if r.method != "GET"]
