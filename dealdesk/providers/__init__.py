"""The only code that speaks HTTP to Stora or nodestash. ``adapter_for`` picks the adapter."""

from __future__ import annotations

from dealdesk.providers.base import ConnectionInfo, Provider


def adapter_for(connection: ConnectionInfo) -> Provider:
    if connection.provider == "stora":
        from dealdesk.providers.stora import StoraAdapter

        return StoraAdapter(connection)
    if connection.provider == "nodestash":
        from dealdesk.providers.nodestash import NodestashAdapter

        return NodestashAdapter(connection)
    raise ValueError(f"unknown provider {connection.provider!r}")


def deal_id_is_valid(provider: str, deal_id: str) -> bool:
    """Whether ``deal_id`` has the shape of ``provider``'s deal ids (for ids posted in forms)."""
    if provider == "stora":
        from dealdesk.providers.stora import DEAL_ID_PATTERN
    elif provider == "nodestash":
        from dealdesk.providers.nodestash import DEAL_ID_PATTERN
    else:
        return False
    return DEAL_ID_PATTERN.fullmatch(deal_id) is not None
