"""A synced store of 10,000 deals per source, written straight through ``sync/store.py``.

The deals are made here, not read from the sandbox: filling 20,000 rows through the sync engine
over HTTP takes minutes, and each filter's expected rows are then computed from these very deals
in Python, independently of the query under test. The shapes follow the adapters': the "stora"
connection's deals carry free-text values and an assignee with a name; the "nodestash" ones carry
amounts in three currencies, an owner id that names nobody, expected close dates and tags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from dealdesk.connections.models import Connection
from dealdesk.providers.base import (
    LOST,
    OPEN,
    WON,
    Choice,
    Deal,
    Money,
    Pipeline,
    Ref,
    ReferenceData,
    Stage,
)
from dealdesk.sync.models import StoreVersion, SyncedDeal
from dealdesk.sync.store import reference_save, row_fields, store_changed

PER_SOURCE = 10_000
STAFF = tuple(Choice(f"staff_{n:02d}", f"Staff member {n}") for n in range(7))
OWNER_IDS = tuple(f"usr_{n}" for n in range(5))
VALUE_TEXTS = ("£65/month, 3 months min", "1000", "", "about 2,500 a year")
CURRENCIES = ("EUR", "USD", "GBP")
TAG_SETS = (
    (),
    ("vip",),
    ("VIP", "renewal"),
    ("vip-plus",),
    ("renewal", "café"),
    ("pilot",),
)
STATUSES = (OPEN, OPEN, OPEN, WON, LOST)
NAME_TRAPS = {7: '=HYPERLINK("http://x")', 8: "+1 call back", 9: "-minus", 10: "@mention"}


@dataclass
class LargeStore:
    stora: Connection
    nodestash: Connection
    deals: list[Deal]
    today: dt.date

    @property
    def connections(self) -> list[Connection]:
        return [self.stora, self.nodestash]


def _stages(pipeline_id: str) -> tuple[Stage, ...]:
    return tuple(Stage(f"{pipeline_id}_s{n}", f"Stage {n}", n, OPEN, pipeline_id) for n in range(4))


def _stora_deal(index: int, pipeline: Pipeline, now: dt.datetime) -> Deal:
    owner = None if index % 10 == 0 else STAFF[index % len(STAFF)]
    return Deal(
        connection_slug="stora",
        source_label="Stora",
        provider="stora",
        id=f"deal_{index:06d}",
        name=NAME_TRAPS.get(index, f"Storage deal {index}"),
        status=STATUSES[index % len(STATUSES)],
        stage=pipeline.stages[index % 4],
        pipeline=pipeline,
        value_text=VALUE_TEXTS[index % len(VALUE_TEXTS)] or None,
        owner=Ref(owner.value, owner.label) if owner else None,
        created_at=now - dt.timedelta(days=400),
        updated_at=now - dt.timedelta(minutes=index * 3),
    )


def _nodestash_deal(index: int, pipeline: Pipeline, now: dt.datetime, today: dt.date) -> Deal:
    value = None
    if index % 17:
        value = Money(Decimal((index % 100) * 500 + 250), CURRENCIES[index % len(CURRENCIES)])
    return Deal(
        connection_slug="nodestash",
        source_label="nodestash",
        provider="nodestash",
        id=f"dl_{index:06d}",
        name=f"Deal {index}",
        status=STATUSES[index % len(STATUSES)],
        stage=pipeline.stages[index % 4],
        pipeline=pipeline,
        value=value,
        owner_id=None if index % 6 == 0 else OWNER_IDS[index % len(OWNER_IDS)],
        expected_close_date=None if index % 9 == 0 else today + dt.timedelta(days=index % 150 - 60),
        tags=TAG_SETS[index % len(TAG_SETS)],
        created_at=now - dt.timedelta(days=400),
        updated_at=now - dt.timedelta(minutes=index * 3 + 1),
    )


def _connection(slug: str, label: str) -> Connection:
    connection = Connection(slug=slug, label=label, provider=slug, base_url="http://127.0.0.1:9/")
    connection.set_api_key("not-used")
    connection.save()
    return connection


def fill_large_store(per_source: int = PER_SOURCE) -> LargeStore:
    now = timezone.now()
    today = timezone.localdate(now)
    stora, nodestash = _connection("stora", "Stora"), _connection("nodestash", "nodestash")
    stora_pipeline = Pipeline("stora", "Stora", _stages("stora"))
    nodestash_pipeline = Pipeline("pl_1", "Sales", _stages("pl_1"))
    reference_save(stora, ReferenceData(pipelines=(stora_pipeline,), staff=STAFF))
    reference_save(nodestash, ReferenceData(pipelines=(nodestash_pipeline,)))
    deals: list[Deal] = []
    for index in range(per_source):
        deals.append(_stora_deal(index, stora_pipeline, now))
        deals.append(_nodestash_deal(index, nodestash_pipeline, now, today))
    by_slug = {"stora": stora, "nodestash": nodestash}
    rows = [
        SyncedDeal(connection=by_slug[deal.connection_slug], upstream_id=deal.id, **fields)
        for deal in deals
        for fields in [row_fields(deal, now=now)]
    ]
    SyncedDeal.objects.bulk_create(rows, batch_size=1000)
    store_changed()  # as every write to the store does: a new version for the list cache
    return LargeStore(stora=stora, nodestash=nodestash, deals=deals, today=today)


def empty_large_store(store: LargeStore) -> None:
    Connection.objects.filter(pk__in=[c.pk for c in store.connections]).delete()
    StoreVersion.objects.all().delete()  # the module's fill was committed: leave no trace
