"""Previous and Next on the detail page: the order of the list page the user came from.

Rendering a list page remembers its deals' keys in the session under the page's querystring,
with the querystrings of the pages before and after it; the detail page (which gets that
querystring as ``?from=``) finds its neighbours there, so moving through a page costs no upstream
call. At the edge of a page the neighbour is a ``PageStep``: the next (or previous) page of the
same filtered list, loaded once when the user follows it (``deals:nav_step``).
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


@dataclass(frozen=True)
class PageStep:
    """The neighbour is on another page of the list: its querystring, and which end to open."""

    query: str
    pick: str  # "first" | "last"


def _canonical(querystring: str) -> str:
    return urlencode(sorted(QueryDict(querystring or "").items()))


def deal_nav_remember(
    session,
    querystring: str,
    keys: list[str],
    *,
    next_query: str | None = None,
    prev_query: str | None = None,
) -> None:
    remembered = session.get(SESSION_KEY) or {}
    pages = dict(remembered)
    canonical = _canonical(querystring)
    pages.pop(canonical, None)
    pages[canonical] = {"keys": keys, "next": next_query, "prev": prev_query}
    while len(pages) > REMEMBERED_PAGES:
        pages.pop(next(iter(pages)))
    if list(pages.items()) != list(remembered.items()):
        session[SESSION_KEY] = pages  # a session write only when something changed


Step = Neighbour | PageStep | None


def deal_nav_neighbours(session, querystring: str, key: str) -> tuple[Step, Step]:
    """What comes before and after ``key`` in the remembered list, when anything does."""
    page = (session.get(SESSION_KEY) or {}).get(_canonical(querystring)) or {}
    keys = page.get("keys") or [] if isinstance(page, dict) else []
    if key not in keys:
        return None, None
    index = keys.index(key)
    if index > 0:
        before: Step = _neighbour(keys[index - 1])
    else:
        before = PageStep(page["prev"], "last") if page.get("prev") is not None else None
    if index + 1 < len(keys):
        after: Step = _neighbour(keys[index + 1])
    else:
        after = PageStep(page["next"], "first") if page.get("next") is not None else None
    return before, after


def _neighbour(key: str | None) -> Neighbour | None:
    if not key:
        return None
    slug, _, deal_id = key.partition(":")
    return Neighbour(slug, deal_id)
