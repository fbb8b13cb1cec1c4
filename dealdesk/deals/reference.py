"""Reference data (stages, pipelines, staff, contact/site/company names) from the synced store.

The sync engine keeps each connection's reference data in the store; reads take it from there.
Only before a connection's first sync is it read live once (and stored). A write whose fresh
deal names a stage the store does not know reads it again, at most once per stage per TTL.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from dealdesk.connections.models import Connection
from dealdesk.providers.base import Deal, Provider, ReferenceData
from dealdesk.providers.http import key_fingerprint
from dealdesk.sync.store import reference_load, reference_save


def _connection(adapter: Provider) -> Connection:
    return Connection.objects.get(slug=adapter.connection.slug)


def reference_get(*, adapter: Provider, refresh: bool = False) -> ReferenceData:
    """The connection's reference data from the store; read live only when missing or asked."""
    connection = _connection(adapter)
    if not refresh:
        stored = reference_load(connection)
        if stored is not None:
            return stored
    fresh = adapter.reference_data()
    reference_save(connection, fresh)
    return fresh


def reference_unknown_stage(ref: ReferenceData, deals) -> str | None:
    """The first stage id a deal points at that the reference data does not hold (a stage added
    upstream since it was read), or None. A deleted Stora stage has no id: known."""
    for deal in deals:
        stage = deal.stage if isinstance(deal, Deal) else None
        if stage is not None and stage.id is not None and ref.stage(stage.id) is None:
            return stage.id
    return None


def reference_refresh_for_unknown_stage(
    *, adapter: Provider, stage_id: str
) -> ReferenceData | None:
    """Read again once for a deal in a stage the store does not know. Each unknown stage id
    costs at most one read per TTL; None when this stage already had its read."""
    fingerprint = key_fingerprint(f"{adapter.connection.base_url}|{adapter.connection.api_key}")
    marker = f"dealdesk:reference:{adapter.connection.slug}:{fingerprint}:missing:{stage_id}"
    if not cache.add(marker, True, timeout=settings.DEALDESK_REFERENCE_TTL):
        return None
    return reference_get(adapter=adapter, refresh=True)
