"""The deal list's rows, served from the cache while nothing they show changed
(``deals/row_cache.py``)."""

from __future__ import annotations

from django import template
from django.template.loader import get_template
from django.utils.safestring import SafeString

from dealdesk.deals.row_cache import rows_html

register = template.Library()


@register.simple_tag(takes_context=True)
def cached_deal_rows(context: template.Context) -> SafeString:
    """The ``deal-rows`` partial of ``deals/list.html``."""

    def render() -> str:
        return get_template("deals/list.html#deal-rows").render(context.flatten())

    result = context["result"]
    return rows_html(
        result.deals,  # read only when the rows are not in the cache
        shown=context.get("shown") or {},
        bulk=bool(context.get("bulk")),
        current_query=context.get("current_query") or "",
        stale=context.get("stale"),
        render=render,
        content_token=result.content_token,
    )
