"""Provider name -> adapter. A new vendor is one ``ProviderSpec`` line in ``PROVIDERS``.

Everything above ``providers/`` learns about vendors from here: the connection model's provider
choices, the connections the environment asks for (``<PREFIX>_API_URL``/``<PREFIX>_API_KEY``,
read in settings.py), the admin's example base URL and ``adapter_for``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dealdesk.providers.base import ConnectionInfo, Provider, supports_activities
from dealdesk.providers.nodestash import NodestashAdapter
from dealdesk.providers.stora import StoraAdapter


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # stored in Connection.provider; also the slug of its environment connection
    label: str  # shown to people
    adapter: type[Provider]  # a class implementing ``Provider``; built with a ``ConnectionInfo``
    # settings.<PREFIX>_API_URL (defaults to the vendor's public API) and <PREFIX>_API_KEY: the
    # two lines a vendor adds to settings.py, read from the environment.
    settings_prefix: str

    @property
    def url_setting(self) -> str:
        return f"{self.settings_prefix}_API_URL"

    @property
    def key_setting(self) -> str:
        return f"{self.settings_prefix}_API_KEY"


PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("stora", "Stora", StoraAdapter, "STORA"),
        ProviderSpec("nodestash", "nodestash", NodestashAdapter, "NODESTASH"),
    )
}


def provider_spec(name: str) -> ProviderSpec:
    """Raises ``ValueError`` for a provider DealDesk has no adapter for."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}") from None


def adapter_for(connection: ConnectionInfo) -> Provider:
    adapter_class = provider_spec(connection.provider).adapter
    return adapter_class(connection)  # type: ignore[call-arg]  # a Protocol type, a real class


def deal_id_is_valid(provider: str, deal_id: str) -> bool:
    """Whether ``deal_id`` has the shape of ``provider``'s deal ids, by the adapter's own
    ``Provider.is_deal_id`` (no adapter is built: no key is decrypted)."""
    spec = PROVIDERS.get(provider)
    return spec is not None and spec.adapter.is_deal_id(str(deal_id))


def activities_supported(provider: str) -> bool:
    """Whether ``provider``'s adapter reads and writes activities (``ActivitySource``), by its
    class (no adapter is built: no key is decrypted)."""
    spec = PROVIDERS.get(provider)
    return spec is not None and supports_activities(spec.adapter)
