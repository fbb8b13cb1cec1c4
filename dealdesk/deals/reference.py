"""Reference data (stages, pipelines, staff, contact/site/company names) cached per connection.

One ``ReferenceData`` per connection lives in Django's cache for ``DEALDESK_REFERENCE_TTL``
seconds, keyed by the connection slug and a fingerprint of its URL and API key, so a changed key
never reads the old account's lookups. Safe to call from worker threads: it touches the cache,
never the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from dealdesk.providers.base import ConnectionInfo, Deal, Provider, ReferenceData
from dealdesk.providers.http import key_fingerprint


@dataclass(frozen=True)
class CachedReference:
    data: ReferenceData
    fetched_at: float  # time.time()


def reference_cache_key(connection: ConnectionInfo) -> str:
    fingerprint = key_fingerprint(f"{connection.base_url}|{connection.api_key}")
    return f"dealdesk:reference:{connection.slug}:{fingerprint}"


def reference_get(*, adapter: Provider, refresh: bool = False) -> ReferenceData:
    """The connection's reference data, from the cache unless missing or ``refresh``."""
    return _reference_entry(adapter=adapter, refresh=refresh).data


def reference_refresh(*, adapter: Provider) -> ReferenceData:
    """Fetch and cache again, e.g. after a write that changed stages or staff."""
    return reference_get(adapter=adapter, refresh=True)


def reference_forget(*, connection: ConnectionInfo) -> None:
    cache.delete(reference_cache_key(connection))


def reference_unknown_stage(ref: ReferenceData, deals) -> str | None:
    """The first stage id a deal points at that the reference data does not hold (a stage added
    upstream since the cache was filled), or None. A deleted Stora stage has no id: known."""
    for deal in deals:
        stage = deal.stage if isinstance(deal, Deal) else None
        if stage is not None and stage.id is not None and ref.stage(stage.id) is None:
            return stage.id
    return None


def reference_refresh_for_unknown_stage(
    *, adapter: Provider, stage_id: str
) -> ReferenceData | None:
    """Refetch once for a deal in a stage the cache does not know. Each unknown stage id costs at
    most one refetch per TTL, so a stage the stage list never shows is not refetched per page;
    None when this stage already had its refetch."""
    marker = f"{reference_cache_key(adapter.connection)}:missing:{stage_id}"
    if not cache.add(marker, True, timeout=settings.DEALDESK_REFERENCE_TTL):
        return None
    return reference_refresh(adapter=adapter)


def _cached_entry(connection: ConnectionInfo) -> CachedReference | None:
    entry = cache.get(reference_cache_key(connection))
    return entry if isinstance(entry, CachedReference) else None


def _reference_entry(*, adapter: Provider, refresh: bool) -> CachedReference:
    if not refresh:
        entry = _cached_entry(adapter.connection)
        if entry is not None:
            return entry
    entry = CachedReference(data=adapter.reference_data(), fetched_at=time.time())
    cache.set(
        reference_cache_key(adapter.connection), entry, timeout=settings.DEALDESK_REFERENCE_TTL
    )
    return entry
