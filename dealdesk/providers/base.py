"""Provider-neutral deal model, the error hierarchy callers catch, and the adapter protocol.

Nothing above ``dealdesk/providers/`` knows a vendor's JSON shape: adapters turn it into these
dataclasses, and the service and views work only with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

OPEN, WON, LOST = "open", "won", "lost"
STATUSES = (OPEN, WON, LOST)


def humanise(value: str | None) -> str:
    """``chose_competitor`` -> ``Chose competitor``; unknown enum values still read well."""
    if not value:
        return ""
    text = str(value).replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An ISO 8601 timestamp from a vendor's JSON; one without an offset is taken as UTC, and
    anything that is not a timestamp string is ``None``."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# --- Connection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionInfo:
    """What an adapter needs to reach one account of one provider. Built from the DB model."""

    slug: str
    label: str
    provider: str  # "stora" | "nodestash"
    base_url: str
    api_key: str = field(repr=False)


# --- Deal model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A named reference to a related object (assignee, contact, site, company, creator).

    ``id`` is None when the upstream object has no id (a Stora API application creator shows as
    "API"); ``missing`` marks a dangling link whose target no longer resolves.
    """

    id: str | None
    name: str
    missing: bool = False


@dataclass(frozen=True)
class Stage:
    id: str | None  # None for a Stora stage that was deleted: show its name, never send it back
    name: str
    position: int | None = None
    type: str = OPEN  # open | won | lost (nodestash stage type); Stora stages are all "open"
    pipeline_id: str | None = None

    @property
    def is_deleted(self) -> bool:
        return self.id is None


@dataclass(frozen=True)
class Pipeline:
    id: str
    name: str
    stages: tuple[Stage, ...] = ()

    def ordered_stages(self) -> tuple[Stage, ...]:
        return tuple(sorted(self.stages, key=lambda s: (s.position is None, s.position or 0)))

    def stages_of_type(self, stage_type: str) -> tuple[Stage, ...]:
        return tuple(s for s in self.ordered_stages() if s.type == stage_type)


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class LineItem:
    type: str  # "unit_type" | "protection"
    item_id: str
    quantity: int | None = None


LINE_ITEM_TYPES = ("unit_type", "protection")  # also the names of the fields that replace them


@dataclass
class Deal:
    connection_slug: str
    source_label: str
    provider: str
    id: str
    name: str
    status: str  # open | won | lost, or an unknown upstream value kept verbatim
    stage: Stage | None = None
    pipeline: Pipeline | None = None
    value: Money | None = None  # nodestash value + currency
    value_text: str | None = None  # Stora's free-text value_estimate, shown verbatim
    owner: Ref | None = None  # Stora assignee; nodestash owner_id is never shown as a person
    creator: Ref | None = None
    contact: Ref | None = None
    company: Ref | None = None
    site: Ref | None = None
    starts_at: dt.datetime | None = None  # Stora move-in date
    expected_close_date: dt.date | None = None
    note: str | None = None
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] = field(default_factory=dict)  # nodestash custom_fields
    metadata: dict[str, Any] = field(default_factory=dict)  # Stora metadata
    line_items: tuple[LineItem, ...] = ()
    lost_reason: str | None = None
    closed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    # Fields this answer did not carry (a vendor's list leaves some out): a store keeps what it
    # knew of them instead of clearing them.
    absent: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return f"{self.connection_slug}:{self.id}"

    @property
    def status_label(self) -> str:
        return humanise(self.status)

    @property
    def lost_reason_label(self) -> str:
        return humanise(self.lost_reason)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def is_closed(self) -> bool:
        return self.status in (WON, LOST)


# --- What can be done to a deal -------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class EditableField:
    """One inline-editable field of a deal, in DealDesk's own field names.

    ``name`` is ours (``name``, ``value``, ``tags``, ``expected_close_date``, ``note``,
    ``starts_at``, ``assignee``); the adapter translates it to the vendor's field on write.
    ``kind`` picks the input: text | textarea | number | date | select | tags.
    ``value`` is the current Python value (str, Decimal, date, tuple of tags, or a choice id).
    """

    name: str
    label: str
    kind: str
    value: Any = None
    choices: tuple[Choice, ...] = ()
    required: bool = False
    max_length: int | None = None
    help_text: str = ""
    # A field whose value is picked by searching the synced reference data rather than from
    # ``choices`` (``"contact"`` or ``"company"``: the ``ReferenceData`` list it searches).
    lookup: str = ""


@dataclass(frozen=True)
class DealActions:
    """Which state changes a deal allows, and the choices each one needs."""

    stage_choices: tuple[Stage, ...] = ()  # targets of "Change stage", in pipeline order
    can_change_stage: bool = False
    can_win: bool = False
    can_lose: bool = False
    can_reopen: bool = False
    lost_reasons: tuple[Choice, ...] = ()  # Stora: the lost_reason enum (S-A7)
    lost_stages: tuple[Stage, ...] = ()  # nodestash: lost stages of the deal's pipeline
    reopen_stages: tuple[Stage, ...] = ()
    reopen_assignees: tuple[Choice, ...] = ()  # Stora only
    # Why something usually offered is not, in plain words (e.g. a vendor fallback in force).
    notes: tuple[str, ...] = ()


# --- Reference data (cached by the service) --------------------------------------------------


@dataclass(frozen=True)
class ContactInfo:
    """A contact as the reference data knows it: how to reach them, already vendor-neutral."""

    id: str
    name: str
    email: str = ""
    phone: str = ""
    company_id: str = ""


@dataclass(frozen=True)
class PlaceInfo:
    """Where a deal belongs: a company (nodestash) or a site (Stora), with what locates it."""

    id: str
    name: str
    kind: str  # "company" | "site" (shown as the row's label)
    address: str = ""  # one line, e.g. "12 Jamestown Road, London NW1 7BY"
    website: str = ""  # a bare domain, e.g. "acme.example"


@dataclass(frozen=True)
class CatalogueItem:
    """Something a line item points at: a unit type (name and size) or a protection level
    (its cover level: it has no name)."""

    id: str
    type: str  # one of LINE_ITEM_TYPES
    name: str
    detail: str = ""  # "50 sq ft"; "" for a protection level

    @property
    def label(self) -> str:
        return f"{self.name} ({self.detail})" if self.detail else self.name


@dataclass(frozen=True)
class ReferenceData:
    """Slow-changing lookups of one connection: stages/pipelines, staff and id -> name maps.

    Stora has one pipeline (id ``stora``) holding its stages. ``names`` maps every prefixed id
    the adapter can resolve (staff, contacts, sites, companies) to a display name. ``contacts``,
    ``places`` and ``catalogue`` hold what the deal page and the create form show beyond a
    name; ``link_templates`` the vendor's link templates by name (``{rel}`` marks the path),
    which only the adapter interprets (``Provider.deal_links``).
    """

    pipelines: tuple[Pipeline, ...] = ()
    staff: tuple[Choice, ...] = ()
    names: dict[str, str] = field(default_factory=dict)
    contacts: tuple[ContactInfo, ...] = ()
    places: tuple[PlaceInfo, ...] = ()
    catalogue: tuple[CatalogueItem, ...] = ()
    link_templates: dict[str, str] = field(default_factory=dict)

    def contact(self, contact_id: str | None) -> ContactInfo | None:
        return next((c for c in self.contacts if c.id == contact_id), None) if contact_id else None

    def place(self, place_id: str | None) -> PlaceInfo | None:
        return next((p for p in self.places if p.id == place_id), None) if place_id else None

    def catalogue_item(self, item_id: str | None) -> CatalogueItem | None:
        return next((c for c in self.catalogue if c.id == item_id), None) if item_id else None

    def catalogue_of(self, line_type: str) -> tuple[CatalogueItem, ...]:
        return tuple(item for item in self.catalogue if item.type == line_type)

    def stage(self, stage_id: str | None) -> Stage | None:
        for pipeline in self.pipelines:
            for stage in pipeline.stages:
                if stage.id == stage_id:
                    return stage
        return None

    def pipeline(self, pipeline_id: str | None) -> Pipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)


@dataclass(frozen=True)
class DealLink:
    """A link to the deal in the vendor's own app, already checked to be https to the host the
    vendor's link template names."""

    label: str  # "Open in Backoffice"
    url: str


def link_from_template(template: str, rel: str) -> str | None:
    """``https://host{rel}`` with ``rel`` (a path we built) in place, or None unless the result
    is an https URL to the template's own host, with no credentials, query or fragment."""
    if template.count("{rel}") != 1:
        return None
    prefix, _, suffix = template.partition("{rel}")
    if suffix or not rel.startswith("/") or any(c in rel for c in "?#\\@ \t\r\n"):
        return None
    try:
        base = urlsplit(prefix)
        url = urlsplit(prefix + rel)
    except ValueError:
        return None
    if base.scheme != "https" or url.scheme != "https" or not base.hostname:
        return None
    if base.username or base.password or base.query or base.fragment or "@" in base.netloc:
        return None
    if url.netloc != base.netloc or url.query or url.fragment:
        return None
    return url.geturl()


# --- Listing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DealQuery:
    """Filters and sort for one source. Adapters push what the API supports upstream; the
    service re-checks every row locally, so an upstream that ignores a filter shows no wrong row.
    """

    search: str = ""
    status: str = ""  # "" | open | won | lost
    stage_id: str = ""
    pipeline_id: str = ""
    sort: str = "-updated_at"  # -updated_at | updated_at | name | -name | value | -value


@dataclass(frozen=True)
class DealPage:
    deals: tuple[Deal, ...]
    next_cursor: str | None  # opaque to callers; None at the end
    total: int | None = None  # Stora reports a count; nodestash does not


@dataclass(frozen=True)
class DailyQuota:
    """A vendor's daily request quota as its last answer reported it (per key or workspace)."""

    limit: int
    remaining: int
    resets_at: float  # epoch seconds


# --- Errors ---------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every upstream failure. ``message`` is plain words a user can read."""

    default_message = "The upstream API failed."

    def __init__(
        self,
        message: str | None = None,
        *,
        connection_label: str = "",
        status: int | None = None,
        code: str = "",
        request_id: str = "",
    ) -> None:
        self.message = message or self.default_message
        self.connection_label = connection_label
        self.status = status
        self.code = code
        self.request_id = request_id
        super().__init__(self.message)


class AuthenticationFailed(ProviderError):
    default_message = "The API key was rejected. An admin must update it."


class Forbidden(ProviderError):
    default_message = "The API key lacks a permission DealDesk needs. An admin must update it."


class NotFound(ProviderError):
    default_message = "Not found."


class ValidationFailed(ProviderError):
    """``field_errors`` maps DealDesk field names (``name``, ``value``…) to messages; errors
    that point at no known field are under ``"__all__"``."""

    default_message = "The upstream API refused the change."

    def __init__(
        self,
        message: str | None = None,
        *,
        field_errors: Mapping[str, list[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.field_errors: dict[str, list[str]] = dict(field_errors or {})


class Conflict(ProviderError):
    """The upstream refused the change because the deal's state changed (or, raised by the
    service, because a field being edited was changed upstream since the user saw it)."""

    default_message = "The deal changed since you loaded it."

    def __init__(
        self,
        message: str | None = None,
        *,
        current: Deal | None = None,
        fields: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.current: Deal | None = current
        self.fields: tuple[str, ...] = tuple(fields)


# ``RateLimited.code`` when a vendor's quota is spent for a long while (a day's): its message
# says until when, and is shown as it is.
QUOTA_SPENT = "quota_spent"
# The code of an ``Unavailable`` after a write whose answer never came: it may have happened.
WRITE_OUTCOME_UNKNOWN = "write_outcome_unknown"


class RateLimited(ProviderError):
    default_message = "Too many requests."

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after  # seconds from now, when known

    @property
    def retry_after_seconds(self) -> int | None:
        if self.retry_after is None:
            return None
        return max(1, int(-(-self.retry_after // 1)))


class Unavailable(ProviderError):
    """Timeout, connection error, 5xx or a body that is not the JSON we expect."""

    default_message = "is unavailable right now."


# --- Adapter protocol -----------------------------------------------------------------------


class Provider(Protocol):
    """One adapter instance per connection. Every method may raise a ``ProviderError``.

    Writes take the idempotency key of the user action so a double submit acts once. Field
    changes use DealDesk's field names (see ``EditableField``).
    """

    connection: ConnectionInfo

    @staticmethod
    def is_deal_id(deal_id: str) -> bool:
        """Does ``deal_id`` match the vendor's id pattern? Others are never sent upstream.
        A static method: forms check posted ids with the class (``registry.deal_id_is_valid``)."""

    @property
    def last_request_id(self) -> str:
        """The vendor's request id of the latest response, success or error ("" if none), for
        the audit trail."""

    def lost_choices(self, pipeline: Pipeline, *, ref: ReferenceData) -> tuple[Choice, ...]:
        """How an open deal of ``pipeline`` is lost: the values ``mark_lost`` takes as its
        ``reason`` (a lost reason, or a lost stage that is itself the reason)."""

    def assumption_report(self) -> list[Any]:
        """Which ASSUMED behaviours held and which fell back (``AssumptionStatus`` rows)."""

    def ping(self) -> None:
        """One cheap authenticated read; raises on failure (admin "Test connection")."""

    def reference_data(self) -> ReferenceData: ...

    def daily_quota(self) -> DailyQuota | None:
        """The daily quota the vendor last reported, or None for a vendor without one."""

    def list_deals(
        self, query: DealQuery, *, ref: ReferenceData, cursor: str | None, limit: int
    ) -> DealPage: ...

    def get_deal(self, deal_id: str, *, ref: ReferenceData) -> Deal: ...

    def editable_fields(self, deal: Deal, *, ref: ReferenceData) -> list[EditableField]: ...

    def actions(self, deal: Deal, *, ref: ReferenceData) -> DealActions: ...

    def update_deal(
        self,
        deal_id: str,
        changes: dict[str, Any],
        *,
        ref: ReferenceData,
        idempotency_key: str,
        current: Deal | None = None,
    ) -> Deal:
        """``current``: the deal as just read, for values a field edit keeps (a time of day)."""

    def change_stage(
        self, deal: Deal, stage_id: str, *, ref: ReferenceData, idempotency_key: str
    ) -> Deal: ...

    def mark_won(self, deal: Deal, *, ref: ReferenceData, idempotency_key: str) -> Deal: ...

    def mark_lost(
        self, deal: Deal, reason: str, *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        """``reason``: a Stora ``lost_reason`` value, or a nodestash lost stage id."""

    def reopen(
        self,
        deal: Deal,
        *,
        stage_id: str | None,
        assignee_id: str | None,
        ref: ReferenceData,
        idempotency_key: str,
    ) -> Deal: ...

    def create_fields(self, *, ref: ReferenceData) -> list[EditableField]:
        """The fields of a new deal in the vendor's words, in form order (DealDesk's field
        names; ``lookup`` fields are searched in ``ref``). Read from ``ref``: no upstream call."""

    def create_deal(
        self, values: dict[str, Any], *, ref: ReferenceData, idempotency_key: str
    ) -> Deal:
        """Create a deal from ``values`` keyed by ``create_fields`` names (a missing or None
        value is not sent). A refusal is ``ValidationFailed`` with errors by those names."""

    def deal_links(self, deal: Deal, *, ref: ReferenceData) -> tuple[DealLink, ...]:
        """Links to the deal in the vendor's app, from ``ref``'s templates (none if unsafe)."""


# --- Webhooks (a capability: only adapters that implement ``WebhookReceiver``) --------------


class WebhookRefused(Exception):
    """A delivery that must not touch the store; ``status`` is the 4xx to answer with."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class DealEvent:
    """A verified webhook event: its id (to deduplicate on) and the deal it carries, if any."""

    id: str
    type: str
    deal: Deal | None


@dataclass(frozen=True)
class WebhookEndpoint:
    """An endpoint registered upstream; ``secret`` is only known right after registering."""

    id: str
    url: str
    state: str
    secret: str = ""


class WebhookReceiver(Protocol):
    """An adapter whose vendor pushes signed deal changes (``supports_webhooks`` tells)."""

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, secret: str, *, now: float | None = None
    ) -> None:
        """Raise ``WebhookRefused`` unless ``body`` is signed with ``secret`` and fresh."""

    def parse_webhook_event(self, body: bytes, *, ref: ReferenceData) -> DealEvent:
        """The event of a verified body; ``WebhookRefused`` if it is not one."""

    def register_webhook(self, url: str) -> WebhookEndpoint: ...

    def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint: ...


def supports_webhooks(adapter: object) -> bool:
    return callable(getattr(adapter, "verify_webhook", None))
