"""Which ASSUMED vendor behaviours held for a connection, and which fell back.

Every adapter names its assumptions (and the fallback of each) at the top of its module, as
``Assumption`` values. When a call proves one wrong, the adapter switches to the fallback and
records it here, so the next call goes straight to the fallback and the admin's connection page
can say "S-A9 staff endpoint: fell back (404)". The record lives in Django's cache (shared by
every worker when ``CACHE_URL`` is a shared cache), keyed by the connection's URL and API key:
a new key or URL starts unchecked again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.cache import cache

from dealdesk.providers.base import ConnectionInfo
from dealdesk.providers.http import key_fingerprint

HELD, FELL_BACK, UNCHECKED = "held", "fell back", "not checked yet"


@dataclass(frozen=True)
class Assumption:
    """One ASSUMED behaviour (``../shared/api/``) and what DealDesk does when it is wrong."""

    id: str  # "S-A9"
    subject: str  # "staff endpoint"
    fallback: str  # plain words for an admin


@dataclass(frozen=True)
class AssumptionStatus:
    assumption: Assumption
    state: str  # HELD | FELL_BACK | UNCHECKED
    detail: str = ""  # what proved it wrong, e.g. "404"
    checked_at: float | None = None

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.assumption.id} {self.assumption.subject}: {self.state}{detail}"


def _cache_key(connection: ConnectionInfo, assumption_id: str) -> str:
    fingerprint = key_fingerprint(f"{connection.base_url}|{connection.api_key}")
    return f"dealdesk:assumption:{fingerprint}:{assumption_id}"


class AssumptionLog:
    """The recorded state of one connection's assumptions; read once per adapter instance."""

    def __init__(self, connection: ConnectionInfo, assumptions: tuple[Assumption, ...]) -> None:
        self.connection = connection
        self.assumptions = {a.id: a for a in assumptions}
        self._states: dict[str, dict] | None = None

    def _load(self) -> dict[str, dict]:
        if self._states is None:
            keys = {_cache_key(self.connection, a): a for a in self.assumptions}
            found = cache.get_many(list(keys))
            self._states = {keys[key]: value for key, value in found.items()}
        return self._states

    def fell_back(self, assumption: Assumption) -> bool:
        return self._load().get(assumption.id, {}).get("state") == FELL_BACK

    def held(self, assumption: Assumption) -> None:
        """A call relying on ``assumption`` succeeded; a recorded fallback stays as it is."""
        if assumption.id in self._load():
            return
        entry = {"state": HELD, "detail": "", "at": time.time()}
        cache.add(_cache_key(self.connection, assumption.id), entry, timeout=None)
        self._load()[assumption.id] = entry

    def refused(self, assumption: Assumption) -> frozenset[str]:
        """The parameters a fallen-back assumption found refused (filters, sorts)."""
        return frozenset(self._load().get(assumption.id, {}).get("refused", ()))

    def fall_back(
        self, assumption: Assumption, detail: str, *, refused: Iterable[str] = ()
    ) -> None:
        if self.fell_back(assumption) and set(refused) <= self.refused(assumption):
            return  # already known: the first detail stays
        refused = sorted(self.refused(assumption) | set(refused))
        entry = {"state": FELL_BACK, "detail": detail, "at": time.time(), "refused": refused}
        cache.set(_cache_key(self.connection, assumption.id), entry, timeout=None)
        self._load()[assumption.id] = entry

    def report(self) -> list[AssumptionStatus]:
        states = self._load()
        report = []
        for assumption in self.assumptions.values():
            entry = states.get(assumption.id)
            if not isinstance(entry, dict):
                report.append(AssumptionStatus(assumption, UNCHECKED))
                continue
            report.append(
                AssumptionStatus(
                    assumption,
                    str(entry.get("state")),
                    str(entry.get("detail") or ""),
                    entry.get("at"),
                )
            )
        return report
