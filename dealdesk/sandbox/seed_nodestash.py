"""Deterministic seed data for the nodestash simulator, in nodestash's own attribute shapes.

- ``demo``: about 40 deals that read like a B2B sales team's last five weeks, two pipelines
  ("Sales", and "Partnerships" with two lost stages), contacts, companies, every status, unicode
  and HTML in titles, one deal whose contact was deleted (a dangling link, nodestash.md §14.10).
- ``large``: 10,000 generated deals over the same pipelines (benchmarks, pagination), with 1,500
  companies and 1,500 contacts.
- ``contacts``: 1,500 companies and 1,500 contacts with 300 generated deals (reference-data
  volumes without the deal volume).
- a number such as ``"120"``: that many generated deals (40 companies and 150 contacts when more
  than the demo's 40 deals).

Every seed has activities (nodestash.md §20) on its deals: overdue tasks, tasks due today, planned
tasks and meetings, notes and finished calls, and open deals with no open task at all.

Every timestamp is an offset from the moment of seeding, so the demo always looks current; the
offsets, ids and choices come from ``random.Random`` with a fixed seed, so two seedings in the same
second give identical data.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import string
from dataclasses import dataclass, field
from typing import Any

LARGE_DEAL_COUNT = 10_000
MANY_REFERENCES = 1_500  # companies and contacts in the ``large`` and ``contacts`` seeds
CONTACTS_SEED_DEALS = 300
_ID_ALPHABET = string.ascii_letters + string.digits
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_timestamp(moment: dt.datetime) -> str:
    """nodestash timestamps: ISO 8601 UTC with a ``Z``, whole seconds (``_TIME_FORMAT``, spelt
    out: ``strftime`` is the slowest step of building 10,000 deals)."""
    m = moment.astimezone(dt.UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.UTC)


@dataclass
class NodestashSeed:
    """Raw attribute dicts, keyed by id, in creation order."""

    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)
    activities: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Ids:
    """Prefixed ids like nodestash's (``dl_3xK8nM2qTsYvAzCeB2cD4``), drawn from one RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def new(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(20))

    def quick(self, prefix: str) -> str:
        """The same shape from one draw, many times faster (for the many activities)."""
        text = base64.b64encode(self.rng.randbytes(15)).decode()
        return prefix + text.replace("+", "x").replace("/", "y")


# --- Pipelines -------------------------------------------------------------------------------

PIPELINES = (
    (
        "Sales",
        "Inbound and outbound new business",
        True,
        (
            ("Lead", "open"),
            ("Qualified", "open"),
            ("Proposal", "open"),
            ("Negotiation", "open"),
            ("Closed Won", "won"),
            ("Closed Lost", "lost"),
        ),
    ),
    (
        "Partnerships",
        None,
        False,
        (
            ("Intro call", "open"),
            ("Evaluation", "open"),
            ("Contract", "open"),
            ("Signed", "won"),
            ("Lost – no budget", "lost"),
            ("Lost – competitor", "lost"),
        ),
    ),
)


def _pipelines(ids: _Ids, now: dt.datetime) -> dict[str, dict[str, Any]]:
    pipelines = {}
    for index, (name, description, is_default, stages) in enumerate(PIPELINES):
        created = format_timestamp(now - dt.timedelta(days=400 - index * 30))
        pipeline_id = ids.new("pp_")
        pipelines[pipeline_id] = {
            "id": pipeline_id,
            "name": name,
            "description": description,
            "is_default": is_default,
            "stages": [
                {
                    "id": ids.new("ps_"),
                    "name": stage_name,
                    "position": position,
                    "type": stage_type,
                    "created_at": created,
                    "updated_at": created,
                }
                for position, (stage_name, stage_type) in enumerate(stages)
            ],
            "created_at": created,
            "updated_at": created,
        }
    return pipelines


# --- Companies and contacts ------------------------------------------------------------------

COMPANIES = (
    ("Acme GmbH", "acme.de", "Manufacturing", "201-500"),
    ("Müller & Söhne KG", "mueller-soehne.de", "Logistics", "51-200"),
    ("Ωmega Λtd", "omega-ltd.gr", "Technology", "11-50"),
    ("Widgets & Co", "widgets.co.uk", "Retail", "51-200"),
    ("Globex Inc", "globex.io", "Finance", "201-500"),
    ("Initech", "initech.com", "Technology", "501-1000"),
    ("Nordlicht Logistik AG", "nordlicht-logistik.de", "Logistics", "1000+"),
    ("Brightwell Partners", "brightwell.co", "Consulting", "11-50"),
)

CONTACTS = (
    ("Anna", "Schmidt", 0),
    ("Jonas", "Weber", 0),
    ("Klaus", "Müller", 1),
    ("Sofia", "Papadopoulou", 2),
    ("Oliver", "Hughes", 3),
    ("Priya", "Patel", 3),
    ("Daniel", "Cohen", 4),
    ("Maria", "García", 4),
    ("Peter", "Gibbons", 5),
    ("Samir", "Nagheenanajar", 5),
    ("Lena", "Fischer", 6),
    ("Björn", "Larsen", 6),
    ("Chloé", "Dubois", 7),
    ("Tom", "Baker", 7),
    (None, None, 1),  # only an email: the dashboard falls back to it
)

_FIRST_NAMES = ("Alex", "Sam", "Kim", "Noah", "Mia", "Luca", "Emma", "Finn", "Zoe", "Omar")
_LAST_NAMES = ("Meyer", "Smith", "Rossi", "Novak", "Berg", "Jensen", "Silva", "Kowalski")


def _companies(ids: _Ids, now: dt.datetime, count: int) -> dict[str, dict[str, Any]]:
    companies = {}
    for index in range(count):
        if index < len(COMPANIES):
            name, domain, industry, size = COMPANIES[index]
        else:
            name = f"Customer {index + 1:03d} Ltd"
            domain, industry, size = f"customer{index + 1:03d}.example", "Services", "11-50"
        created = format_timestamp(now - dt.timedelta(days=300 - index % 200, hours=index % 24))
        # Past the 40 the numbered seeds use, the quick draw keeps 1,500 fast (same ids below).
        company_id = ids.new("co_") if index < 40 else ids.quick("co_")
        companies[company_id] = {
            "id": company_id,
            "name": name,
            "domain": domain,
            "industry": industry,
            "size": size,
            "custom_fields": {"tier": "enterprise"} if size in ("501-1000", "1000+") else {},
            "tags": ["customer"] if index % 3 else ["customer", "partner"],
            "created_at": created,
            "updated_at": created,
        }
    return companies


def _contacts(
    ids: _Ids, now: dt.datetime, company_ids: list[str], count: int
) -> dict[str, dict[str, Any]]:
    contacts = {}
    for index in range(count):
        if index < len(CONTACTS):
            first, last, company_index = CONTACTS[index]
        else:
            first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
            last = _LAST_NAMES[(index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
            company_index = index
        company_id = company_ids[company_index % len(company_ids)]
        email = (
            f"{(first or 'procurement').lower()}.{(last or str(index)).lower()}@example.com"
            if first
            else "procurement@mueller-soehne.de"
        )
        if index >= len(_FIRST_NAMES) * len(_LAST_NAMES):  # past the name pairs: keep it unique
            email = email.replace("@", f".{index}@")
        created = format_timestamp(now - dt.timedelta(days=200 - index % 150, minutes=index))
        contact_id = ids.new("ct_") if index < 150 else ids.quick("ct_")  # as for companies
        contacts[contact_id] = {
            "id": contact_id,
            "email": email,
            "first_name": first,
            "last_name": last,
            "phone": None if index % 4 == 0 else f"+49-30-555-{index:04d}",
            "company_id": company_id,
            "title": "Head of Operations" if index % 2 else "Procurement Lead",
            "source": "website" if index % 3 else "referral",
            "custom_fields": {},
            "tags": ["decision-maker"] if index % 5 == 0 else [],
            "created_at": created,
            "updated_at": created,
        }
    return contacts


# --- Deals -----------------------------------------------------------------------------------

# (title, company index, pipeline index, stage position, value, currency, tags, priority)
DEMO_DEALS = (
    ("Acme GmbH — 50 seats renewal", 0, 0, 3, "42000.00", "EUR", ("renewal",), "high"),
    ("Acme GmbH — warehouse pilot", 0, 0, 1, "8500.00", "EUR", ("pilot",), None),
    ("Müller & Söhne — Lagerflächen", 1, 0, 2, "128000.00", "EUR", ("enterprise",), "high"),
    ("Müller & Söhne — Kühlhaus Erweiterung", 1, 0, 0, None, "EUR", (), None),
    ("Ωmega Λtd", 2, 0, 1, "15750.50", "EUR", ("smb",), "medium"),
    ("<img src=x onerror=alert(1)> Widgets & Co", 3, 0, 0, "999.99", "GBP", ("xss-test",), None),
    ("Widgets & Co — 12 storefront sensors", 3, 0, 2, "23400.00", "GBP", ("hardware",), None),
    ("Widgets & Co — support plan", 3, 0, 4, "6000.00", "GBP", ("renewal",), None),
    ("Globex Inc — analytics add-on", 4, 0, 3, "56000.00", "USD", ("upsell",), "high"),
    ("Globex Inc — 200 seats expansion", 4, 0, 4, "240000.00", "USD", ("enterprise",), "high"),
    ("Globex Inc — EMEA rollout", 4, 0, 5, "87000.00", "USD", ("enterprise",), "medium"),
    ("Initech — TPS report automation", 5, 0, 1, "31000.00", "USD", ("automation",), None),
    ("Initech — 500 seats enterprise", 5, 0, 2, "410000.00", "USD", ("enterprise",), "high"),
    ("Initech — training workshop", 5, 0, 5, "4800.00", "USD", (), "low"),
    ("Nordlicht Logistik — Hamburg hub", 6, 0, 3, "175000.00", "EUR", ("enterprise",), "high"),
    ("Nordlicht Logistik — fleet telematics", 6, 0, 0, None, "EUR", ("inbound",), None),
    ("Nordlicht Logistik — 2 year extension", 6, 0, 4, "96000.00", "EUR", ("renewal",), None),
    ("Brightwell Partners — advisory retainer", 7, 0, 1, "18000.00", "GBP", (), "medium"),
    ("Brightwell Partners — data room setup", 7, 0, 5, "7200.00", "GBP", (), None),
    ("Acme GmbH — API integration", 0, 0, 0, "12000.00", "EUR", ("inbound",), None),
    ("Ωmega Λtd — Q3 upsell", 2, 0, 3, "9900.00", "EUR", ("upsell",), None),
    ("Initech — Swingline staplers (bulk)", 5, 0, 4, "1250.00", "USD", ("hardware",), "low"),
    ("Müller & Söhne — 3 year renewal", 1, 0, 1, "64000.00", "EUR", ("renewal",), None),
    ("Globex Inc — security review", 4, 0, 0, None, "USD", ("inbound",), None),
    ("Widgets & Co — pop-up stores", 3, 0, 1, "14500.00", "GBP", (), None),
    ("Brightwell Partners — referral programme", 7, 1, 0, None, "GBP", ("referral",), None),
    ("Nordlicht Logistik — reseller agreement", 6, 1, 1, "50000.00", "EUR", ("reseller",), "high"),
    ("Acme GmbH — OEM bundle", 0, 1, 2, "120000.00", "EUR", ("oem",), "high"),
    ("Globex Inc — marketplace listing", 4, 1, 3, "30000.00", "USD", ("marketplace",), None),
    ("Ωmega Λtd — regional distribution", 2, 1, 4, "22000.00", "EUR", ("reseller",), None),
    ("Initech — co-marketing", 5, 1, 5, "15000.00", "USD", ("marketing",), None),
    ("Widgets & Co — affiliate deal", 3, 1, 0, "3000.00", "GBP", ("referral",), "low"),
    ("Müller & Söhne — Partnerprogramm", 1, 1, 1, "40000.00", "EUR", ("reseller",), None),
    ("Brightwell Partners — white label", 7, 1, 3, "65000.00", "GBP", ("oem",), "high"),
    ("Globex Inc — APAC partner", 4, 1, 2, "80000.00", "USD", ("reseller",), "medium"),
    ("Nordlicht Logistik — carrier network", 6, 1, 5, None, "EUR", (), None),
    ("Acme GmbH — training partner", 0, 1, 4, "12500.00", "EUR", ("training",), None),
    ("Initech — integration partner", 5, 1, 1, "27000.00", "USD", ("integration",), None),
    ("Widgets & Co — holiday promo", 3, 0, 2, "5400.00", "GBP", ("seasonal",), None),
    ("Ωmega Λtd — onboarding package", 2, 0, 0, "2500.00", "EUR", (), None),
)
DANGLING_CONTACT_TITLE = "Initech — TPS report automation"

_GENERATED_TITLES = (
    "{company} — {n} seats renewal",
    "{company} — storage expansion",
    "{company} — pilot project",
    "{company} — support plan",
    "{company} — multi-site rollout",
    "{company} — {n} units",
)
_GENERATED_TAGS = ("renewal", "enterprise", "pilot", "upsell", "inbound", "smb", "hardware")


def _new_deal(
    ids: _Ids,
    rng: random.Random,
    now: dt.datetime,
    *,
    title: str,
    pipeline: dict[str, Any],
    stage: dict[str, Any],
    value: str | None,
    currency: str,
    contact_id: str | None,
    company_id: str | None,
    tags: list[str],
    custom_fields: dict[str, Any],
    quick_id: bool = False,
) -> dict[str, Any]:
    # Spread over ~5 weeks; updated at some point after creation, never in the future.
    created = now - dt.timedelta(seconds=rng.randint(2 * 3600, 35 * 24 * 3600))
    age = (now - created).total_seconds()
    updated = created + dt.timedelta(seconds=int(age * rng.uniform(0.05, 0.98)))
    closed = stage["type"] in ("won", "lost")
    if closed:
        expected = updated.date() - dt.timedelta(days=rng.randint(0, 10))
    else:
        expected = now.date() + dt.timedelta(days=rng.randint(3, 90))
    deal_id = ids.quick("dl_") if quick_id else ids.new("dl_")
    return {
        "id": deal_id,
        "title": title,
        "value": value,
        "currency": currency,
        "pipeline_id": pipeline["id"],
        "stage_id": stage["id"],
        "contact_id": contact_id,
        "company_id": company_id,
        "owner_id": None,
        "expected_close_date": None if rng.random() < 0.15 else expected.isoformat(),
        "closed_at": format_timestamp(updated) if closed else None,
        "custom_fields": custom_fields,
        "tags": tags,
        "created_at": format_timestamp(created),
        "updated_at": format_timestamp(updated),
    }


def _contacts_by_company(seed: NodestashSeed) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for contact in seed.contacts.values():
        grouped.setdefault(contact["company_id"], []).append(contact["id"])
    return grouped


def _demo_deals(seed: NodestashSeed, ids: _Ids, rng: random.Random, now: dt.datetime) -> None:
    pipelines = list(seed.pipelines.values())
    company_ids = list(seed.companies)
    contacts_of = _contacts_by_company(seed)
    for (
        title,
        company_index,
        pipeline_index,
        position,
        value,
        currency,
        tags,
        priority,
    ) in DEMO_DEALS:
        pipeline = pipelines[pipeline_index]
        company_id = company_ids[company_index]
        contact_id = rng.choice(contacts_of.get(company_id) or [None])
        if title == DANGLING_CONTACT_TITLE:
            contact_id = "ct_" + "Deleted0Contact0000x"  # its contact was deleted upstream
        custom_fields = {"priority": priority} if priority else {}
        deal = _new_deal(
            ids,
            rng,
            now,
            title=title,
            pipeline=pipeline,
            stage=pipeline["stages"][position],
            value=value,
            currency=currency,
            contact_id=contact_id,
            company_id=company_id,
            tags=list(tags),
            custom_fields=custom_fields,
        )
        seed.deals[deal["id"]] = deal


def _generated_deals(
    seed: NodestashSeed,
    ids: _Ids,
    rng: random.Random,
    now: dt.datetime,
    count: int,
    *,
    quick_ids: bool = False,
) -> None:
    pipelines = list(seed.pipelines.values())
    companies = list(seed.companies.values())
    contacts_of = _contacts_by_company(seed)
    for index in range(count):
        pipeline = pipelines[0] if rng.random() < 0.75 else pipelines[1]
        stage = rng.choice(pipeline["stages"])
        company = rng.choice(companies)
        title = rng.choice(_GENERATED_TITLES).format(
            company=company["name"], n=rng.choice((5, 10, 25, 50, 100, 250))
        )
        value = None if rng.random() < 0.1 else f"{rng.randint(500, 500_000)}.{index % 100:02d}"
        deal = _new_deal(
            ids,
            rng,
            now,
            title=title,
            pipeline=pipeline,
            stage=stage,
            value=value,
            currency=rng.choice(("EUR", "EUR", "USD", "GBP")),
            contact_id=rng.choice(contacts_of.get(company["id"]) or [None]),
            company_id=company["id"],
            tags=rng.sample(_GENERATED_TAGS, rng.randint(0, 2)),
            custom_fields={"priority": rng.choice(("high", "medium", "low"))}
            if rng.random() < 0.4
            else {},
            quick_id=quick_ids,
        )
        seed.deals[deal["id"]] = deal


def build_seed(seed: str, *, now: dt.datetime | None = None) -> NodestashSeed:
    """``demo``, ``large``, ``contacts`` or a deal count; any other name falls back to ``demo``."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    name = (seed or "demo").strip().lower()
    generated_count = None
    if name == "large":
        generated_count = LARGE_DEAL_COUNT
    elif name == "contacts":
        generated_count = CONTACTS_SEED_DEALS
    elif name.isdigit():
        generated_count = int(name)
    else:
        name = "demo"
    rng = random.Random(f"nodestash:{name}")  # noqa: S311 - sample data, not security
    ids = _Ids(rng)
    result = NodestashSeed(pipelines=_pipelines(ids, now))
    big = generated_count is not None and generated_count > len(DEMO_DEALS)
    companies, contacts = (40, 150) if big else (len(COMPANIES), len(CONTACTS))
    if name in ("large", "contacts"):
        companies = contacts = MANY_REFERENCES
    result.companies = _companies(ids, now, companies)
    result.contacts = _contacts(ids, now, list(result.companies), contacts)
    if generated_count is None:
        _demo_deals(result, ids, rng, now)
    else:
        # The many-reference seeds draw ids in one go: 10,000 deals and their activities build
        # in well under a second (the numbered seeds keep their ids).
        quick_ids = name in ("large", "contacts")
        _generated_deals(result, ids, rng, now, generated_count, quick_ids=quick_ids)
    result.activities = _activities(result, name, now)
    return result


# --- Activities (nodestash.md §20) -------------------------------------------------------------

# What each open deal has, in turn: the "next step" states a sales list shows.
_OPEN_DEAL_PLANS = ("overdue", "today", "planned", "notes_only", "nothing")


def _activity(
    ids: _Ids,
    deal: dict[str, Any],
    *,
    kind: str,
    subject: str,
    created: dt.datetime,
    due: dt.date | None = None,
    done_at: dt.datetime | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    activity_id = ids.quick("act_")
    stamp = _utc_stamp(created)
    return {
        "id": activity_id,
        "type": kind,
        "subject": subject,
        "body": body,
        "contact_id": deal.get("contact_id"),
        "company_id": deal.get("company_id"),
        "deal_id": deal["id"],
        "owner_id": None,
        "is_done": done_at is not None,
        "due_date": due.isoformat() if due else None,
        "completed_at": _utc_stamp(done_at) if done_at else None,
        "metadata": {},
        "tags": [],
        "created_at": stamp,
        "updated_at": _utc_stamp(done_at) if done_at else stamp,
    }


def _utc_stamp(moment: dt.datetime) -> str:
    """``format_timestamp`` for a whole-second UTC moment, without its slow ``strftime``."""
    return moment.isoformat().replace("+00:00", "Z")


def _activities(seed: NodestashSeed, name: str, now: dt.datetime) -> dict[str, dict[str, Any]]:
    """Notes, tasks, calls and meetings on the seed's deals, from their own RNG (the deals' ids
    stay as they were). Due dates are relative to today (UTC)."""
    rng = random.Random(f"nodestash-activities:{name}")  # noqa: S311 - sample data
    ids = _Ids(rng)
    open_stages = {
        stage["id"]
        for pipeline in seed.pipelines.values()
        for stage in pipeline["stages"]
        if stage["type"] == "open"
    }
    today = now.date()
    activities: list[dict[str, Any]] = []
    for index, deal in enumerate(seed.deals.values()):
        created = dt.datetime.fromisoformat(deal["created_at"])  # strptime is slow for 10,000
        since = max(1, int((now - created).total_seconds()))

        def moment(created=created, since=since) -> dt.datetime:
            return created + dt.timedelta(seconds=int(rng.random() * since))

        if deal["stage_id"] not in open_stages:
            if index % 2 == 0:
                done = moment()
                activities.append(
                    _activity(
                        ids,
                        deal,
                        kind="call",
                        subject="Closing call",
                        created=done,
                        done_at=done,
                        body="Talked through the outcome.",
                    )
                )
            continue
        plan = _OPEN_DEAL_PLANS[index % len(_OPEN_DEAL_PLANS)]
        if plan in ("overdue", "notes_only") or index % 3 == 0:
            activities.append(
                _activity(
                    ids,
                    deal,
                    kind="note",
                    subject="Discovery notes",
                    created=moment(),
                    body="Needs, budget and timeline captured on the first call.",
                )
            )
        if plan == "overdue":
            due = today - dt.timedelta(days=rng.randint(1, 6))
            activities.append(
                _activity(
                    ids,
                    deal,
                    kind="task",
                    subject="Send revised proposal",
                    created=moment(),
                    due=due,
                )
            )
        elif plan == "today":
            activities.append(
                _activity(
                    ids, deal, kind="task", subject="Follow-up call", created=moment(), due=today
                )
            )
        elif plan == "planned":
            kind = "meeting" if index % 2 else "task"
            due = today + dt.timedelta(days=rng.randint(2, 14))
            activities.append(
                _activity(
                    ids,
                    deal,
                    kind=kind,
                    subject="Demo with the buying team",
                    created=moment(),
                    due=due,
                )
            )
            done = moment()
            activities.append(
                _activity(
                    ids,
                    deal,
                    kind="call",
                    subject="Intro call",
                    created=done,
                    due=done.date(),
                    done_at=done,
                )
            )
    activities.sort(key=lambda activity: activity["created_at"])
    return {activity["id"]: activity for activity in activities}
