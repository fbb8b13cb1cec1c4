"""Previous and Next on the detail page: the order of the list page the user came from.

Rendering a list page remembers its deals' keys in the session under the page's querystring;
the detail page (which gets that querystring as ``?from=``) finds its neighbours there, so
moving through the list costs no upstream call.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import QueryDict
from django.utils.http import urlencode

SESSION_KEY = "deal_nav"
REMEMBERED_PAGES = 5


@dataclass(frozen=True)
class Neighbour:
    connection_slug: str
    deal_id: str


def _canonical(querystring: str) -> str:
    return urlencode(sorted(QueryDict(querystring or "").items()))


def deal_nav_remember(session, querystring: str, keys: list[str]) -> None:
    pages = dict(session.get(SESSION_KEY) or {})
    canonical = _canonical(querystring)
    pages.pop(canonical, None)
    pages[canonical] = keys
    while len(pages) > REMEMBERED_PAGES:
        pages.pop(next(iter(pages)))
    session[SESSION_KEY] = pages


def deal_nav_neighbours(
    session, querystring: str, key: str
) -> tuple[Neighbour | None, Neighbour | None]:
    """The deals before and after ``key`` on the remembered list page, when there are any."""
    keys = (session.get(SESSION_KEY) or {}).get(_canonical(querystring)) or []
    if key not in keys:
        return None, None
    index = keys.index(key)
    before = keys[index - 1] if index > 0 else None
    after = keys[index + 1] if index + 1 < len(keys) else None
    return _neighbour(before), _neighbour(after)


def _neighbour(key: str | None) -> Neighbour | None:
    if not key:
        return None
    slug, _, deal_id = key.partition(":")
    return Neighbour(slug, deal_id)
