"""Deterministic seed data for the Stora simulator (raw Stora-shaped dicts).

Seeds: ``demo`` (a self-storage sales team's week, ~40 deals), ``large`` (10,000 deals over
1,500 contacts), ``contacts`` (1,500 contacts, 300 deals over them: reference-data volumes
without the deal volume), a number such as ``"120"`` (that many generated deals over the 20 demo
contacts) and ``empty`` (no deals). Any other name falls back to ``demo`` so one simulator never
breaks a ``Sandbox.reset`` meant for the other.

Every timestamp is an offset from ``now`` (the moment of seeding), so the demo always looks fresh;
the offsets, ids and choices come from ``random.Random`` with a fixed seed, so they never change.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

LARGE_SEED_DEALS = 10_000
MANY_CONTACTS = 1_500  # the ``large`` and ``contacts`` seeds (issue 11's reference-data volume)
CONTACTS_SEED_DEALS = 300
DELETED_STAGE_NAME = "Second Stage - (Deleted)"
API_APPLICATION_ID = "app_99b90b9d208a137b"
HTML_DEAL_NAME = '<script>alert("x")</script> Bold & Co'
LOST_REASONS = (
    "accessibility_concern",
    "better_deal_elsewhere",
    "chose_competitor",
    "price_concerns",
)

MINUTE, HOUR, DAY = 60, 3600, 86_400


@dataclass
class StoraSeed:
    stages: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    sites: list[dict[str, Any]] = field(default_factory=list)
    unit_types: list[dict[str, Any]] = field(default_factory=list)
    protection_levels: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)


def iso(epoch: float) -> str:
    """Stora's timestamp format: ISO 8601 UTC, whole seconds, ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def build_stora_seed(seed: str, *, now: float) -> StoraSeed:
    now = int(now)
    rng = random.Random(f"stora-seed-{seed}")  # noqa: S311 - deterministic demo data
    data = _reference_data(rng, now)
    if seed == "empty":
        return data
    if seed in ("large", "contacts"):
        data.contacts += _many_contacts(now, MANY_CONTACTS - len(data.contacts))
        count = LARGE_SEED_DEALS if seed == "large" else CONTACTS_SEED_DEALS
        data.deals = _generated_deals(rng, data, count, now)
    elif seed.isdigit():
        data.deals = _generated_deals(rng, data, int(seed), now)
    else:
        data.deals = _demo_deals(rng, data, now)
    return data


# --- Reference data ---------------------------------------------------------------------------


def _hex_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}{rng.getrandbits(64):016x}"


STAGES = (  # name, position: positions are deliberately not contiguous (stora.md §11.2)
    ("New enquiry", 1),
    ("Contacted", 2),
    ("Viewing booked", 4),
    ("Quote sent", 7),
    ("Reserved", 9),
)
STAFF = (
    ("Sam Taylor", "sam.taylor"),
    ("Priya Shah", "priya.shah"),
    ("Tom Hughes", "tom.hughes"),
    ("Aisha Rahman", "aisha.rahman"),
    ("Liam O'Connor", "liam.oconnor"),
    ("Grace Mensah", "grace.mensah"),
    ("Ewan Campbell", "ewan.campbell"),
)
CONTACTS = (
    ("Sarah Okafor", "sarah.okafor@example.com", "+44 7700 900123"),
    ("Zoë Łukasiewicz", "zoe.lukasiewicz@example.com", "+44 7700 900456"),
    ("株式会社ミナト", "info@minato.example.jp", "+81 3 1234 5678"),
    ("Bold & Co", "hello@boldandco.example", None),
    ("James Whitfield", "j.whitfield@example.com", "+44 7700 900789"),
    ("Fatima Begum", "fatima.begum@example.com", None),
    ("Oliver Brennan", "oliver.brennan@example.com", "+44 7700 900321"),
    ("Chloe Dubois", "chloe.dubois@example.fr", None),
    ("Mohammed Al-Sayed", "m.alsayed@example.com", "+44 7700 900654"),
    ("Hannah Kowalski", "hannah.k@example.com", None),
    ("Acme Corp", "facilities@acmecorp.example", "+44 20 7946 0321"),
    ("Daniel Evans", "dan.evans@example.com", "+44 7700 900987"),
    ("Siobhan Murphy", "siobhan.murphy@example.ie", None),
    ("Raj Patel", "raj.patel@example.com", "+44 7700 900111"),
    ("Emily Clarke", "emily.clarke@example.com", None),
    ("Northern Removals Ltd", "bookings@northernremovals.example", "+44 113 496 0000"),
    ("Tomasz Nowak", "tomasz.nowak@example.pl", None),
    ("Amara Nwosu", "amara.nwosu@example.com", "+44 7700 900222"),
    ("Lucy Harrington", "lucy.h@example.com", None),
    ("Ben Carter", "ben.carter@example.com", "+44 7700 900333"),
)
SITES = (
    ("Camden Riverside", "12 Jamestown Road", "London", "NW1 7BY"),
    ("Leeds Kirkstall Road", "221 Kirkstall Road", "Leeds", "LS4 2AS"),
    ("Bristol Temple Gate", "5 Cattle Market Road", "Bristol", "BS1 6QA"),
    ("Manchester Ancoats", "48 Great Ancoats Street", "Manchester", "M4 5AB"),
)
UNIT_TYPES = (  # name, size description, monthly price in pence
    ("Locker", "25 sq ft", 2500),
    ("Small unit", "50 sq ft", 5000),
    ("Medium unit", "100 sq ft", 8900),
    ("Container", "160 sq ft", 21000),
)
PROTECTION_LEVELS = ((100_000, 300), (250_000, 550), (500_000, 900))  # cover, monthly price (pence)


def _reference_data(rng: random.Random, now: int) -> StoraSeed:
    data = StoraSeed()
    for index, (name, position) in enumerate(STAGES):
        created = now - (400 - index * 37) * DAY  # created in another order than position
        data.stages.append(
            {
                "id": _hex_id(rng, "dstg_"),
                "created_at": iso(created),
                "name": name,
                "position": position,
                "updated_at": iso(created + 3 * DAY),
            }
        )
    data.stages[2]["created_at"] = iso(now - 500 * DAY)  # default sort (created_at) != position
    for index, (name, email) in enumerate(STAFF):
        created = now - (700 - index * 60) * DAY
        data.staff.append(
            {
                "id": _hex_id(rng, "staff_"),
                "created_at": iso(created),
                "email": f"{email}@acme-storage.example",
                "name": name,
                "updated_at": iso(created + 10 * DAY),
            }
        )
    for index, (full_name, email, phone) in enumerate(CONTACTS):
        created = now - (40 - index) * DAY - rng.randrange(HOUR * 8)
        data.contacts.append(_contact(rng, full_name, email, phone, created, now))
    for index, (name, line_1, city, postal_code) in enumerate(SITES):
        created = now - (900 - index * 120) * DAY
        data.sites.append(_site(rng, name, line_1, city, postal_code, created))
    for index, (name, size, price) in enumerate(UNIT_TYPES):
        site_id = data.sites[index % len(data.sites)]["id"]
        data.unit_types.append(_unit_type(_hex_id(rng, "utype_"), name, size, price, site_id, now))
    for cover, price in PROTECTION_LEVELS:
        data.protection_levels.append(_protection_level(_hex_id(rng, "plvl_"), cover, price, now))
    return data


def _money(pence: int) -> dict[str, Any]:
    """Stora's money object (stora.md §17): minor units, currency, display text."""
    return {"amount": pence, "currency": "GBP", "formatted": f"£{pence / 100:,.2f}"}


def _monthly(pence: int) -> list[dict[str, Any]]:
    return [{"billing_period": "monthly", "price": _money(pence)}]


def _unit_type(unit_type_id, name, size, price, site_id, now) -> dict[str, Any]:
    return {
        "id": unit_type_id,
        "created_at": iso(now - 600 * DAY),
        "name": name,
        "prices": _monthly(price),
        "site": {"id": site_id},
        "size_description": size,
        "status": "active",
        "updated_at": iso(now - 20 * DAY),
    }


def _protection_level(level_id, cover, price, now) -> dict[str, Any]:
    """No ``name``: a protection level is known by its cover (stora.md §17)."""
    return {
        "id": level_id,
        "cover_level": _money(cover),
        "created_at": iso(now - 600 * DAY),
        "prices": _monthly(price),
        "public": True,
        "updated_at": iso(now - 20 * DAY),
    }


_FIRST_NAMES = ("Alex", "Sam", "Jo", "Priya", "Tom", "Mia", "Omar", "Eve", "Luca", "Nia", "Ben")
_LAST_NAMES = ("Smith", "Jones", "Khan", "Brown", "Evans", "Wilson", "Patel", "Walsh", "Young")


def _many_contacts(now: int, count: int) -> list[dict[str, Any]]:
    """Generated contacts, from their own RNG so the demo contacts' and deals' ids never move."""
    rng = random.Random("stora-many-contacts")  # noqa: S311 - deterministic demo data
    contacts = []
    for index in range(count):
        first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        email = f"{first.lower()}.{last.lower()}.{index + 1}@example.com"
        created = now - rng.randrange(2 * DAY, 700 * DAY)
        phone = None if index % 3 == 0 else f"+44 7700 9{index:05d}"
        contacts.append(_contact(rng, f"{first} {last}", email, phone, created, now))
    return contacts


def _contact(rng, full_name, email, phone, created, now) -> dict[str, Any]:
    return {
        "id": _hex_id(rng, "con_"),
        "address": None,
        "company_registration_number": None,
        "created_at": iso(created),
        "email": email,
        "full_name": full_name,
        "identity_check": {"required": False, "status": "not_attempted"},
        "marketing_source": None,
        "metadata": {},
        "phone_number": phone,
        "source": None,
        "status": "lead",
        "stripe_customer_id": None,
        "tax_id": None,
        "tenancies_count": 0,
        "type": None,
        "updated_at": iso(min(now, created + DAY)),
        "use_case": None,
    }


def _site(rng, name, line_1, city, postal_code, created) -> dict[str, Any]:
    hours = {"close": "18:00", "open": "08:00", "status": "set_hours"}
    days = ("friday", "monday", "saturday", "sunday", "thursday", "tuesday", "wednesday")
    return {
        "id": _hex_id(rng, "site_"),
        "access_hours": {day: dict(hours) for day in days},
        "address": {"city": city, "line_1": line_1, "line_2": None, "postal_code": postal_code},
        "created_at": iso(created),
        "description": f"Self storage in {city}: lockers, units and containers.",
        "directions": {"google_maps_url": f"https://maps.google.com/?q=Stora+{city}"},
        "images": {"default": None},
        "name": name,
        "opened_at": iso(created + 30 * DAY),
        "phone": "0113 496 0000",
        "updated_at": iso(created + 60 * DAY),
    }


# --- Deals ------------------------------------------------------------------------------------


UNIT_LABELS = (
    "Unit 12B",
    "Locker 7",
    "Container 3",
    "Unit 4A",
    "Drive-up 21",
    "Unit 30C",
    "Locker 15",
    "Unit 9",
    "Container 11",
    "Unit 2D",
)
VALUE_ESTIMATES = (
    "£50 per month",
    "About £120 per month for 2 units",
    "£35 per month",
    "£89 per month",
    "£210 per month (container)",
    "£65/month, 3 months min",
    None,
)
NOTES = (
    "Moving house, needs space for about 8 weeks.",
    "Student storage over the summer. Asked about a discount.",
    "Wants drive-up access for a van.",
    "Business stock; will need a pallet space too.",
    "Called back, comparing with a competitor down the road.",
    "Viewing on Saturday morning.",
    "Quoted £55 per month incl. protection",
    None,
)


def _deal(
    *,
    deal_id: str,
    name: str,
    status: str,
    stage: dict[str, Any],
    contact_id: str,
    creator_id: str,
    assignee_id: str | None,
    site_id: str | None,
    line_items: list[dict[str, Any]],
    lost_reason: str | None,
    value_estimate: str | None,
    note: str | None,
    metadata: dict[str, Any],
    starts_at: str | None,
    created_at: str,
    updated_at: str,
) -> dict[str, Any]:
    return {
        "id": deal_id,
        "assignee": {"id": assignee_id} if assignee_id else None,
        "contact": {"id": contact_id},
        "created_at": created_at,
        "creator": {"id": creator_id},
        "line_items": line_items,
        "lost_reason": lost_reason,
        "metadata": metadata,
        "name": name,
        "note": note,
        "site": {"id": site_id} if site_id else None,
        "stage": stage,
        "starts_at": starts_at,
        "status": status,
        "updated_at": updated_at,
        "value_estimate": value_estimate,
    }


def _line_items(rng: random.Random, data: StoraSeed) -> list[dict[str, Any]]:
    items = [
        {"item": {"id": rng.choice(data.unit_types)["id"]}, "quantity": 1, "type": "unit_type"}
    ]
    if rng.random() < 0.6:
        protection = rng.choice(data.protection_levels)["id"]
        items.insert(0, {"item": {"id": protection}, "quantity": 1, "type": "protection"})
    return items


def _generated_line_items(data: StoraSeed, index: int) -> list[dict[str, Any]]:
    """A unit type on every generated deal and a protection level on every third, without the
    RNG (so adding them changed no generated id)."""
    unit_type = data.unit_types[index % len(data.unit_types)]["id"]
    items = [{"item": {"id": unit_type}, "quantity": 1, "type": "unit_type"}]
    if index % 3 == 0:
        protection = data.protection_levels[index % len(data.protection_levels)]["id"]
        items.insert(0, {"item": {"id": protection}, "quantity": 1, "type": "protection"})
    return items


def _deleted_stage(now: int) -> dict[str, Any]:
    """A stage removed in Backoffice: deals keep a copy with no ``id`` (stora.md §11.1)."""
    return {
        "created_at": iso(now - 300 * DAY),
        "name": DELETED_STAGE_NAME,
        "position": 3,
        "updated_at": iso(now - 30 * DAY),
    }


# status, stage index, lost reason per demo deal: a realistic funnel, every status and reason.
DEMO_PLAN = (
    *[("open", 0, None)] * 8,
    *[("open", 1, None)] * 6,
    *[("open", 2, None)] * 5,
    *[("open", 3, None)] * 4,
    *[("open", 4, None)] * 3,
    *[("won", 4, None)] * 6,
    ("won", 3, None),
    ("lost", 1, "price_concerns"),
    ("lost", 2, "chose_competitor"),
    ("lost", 3, "better_deal_elsewhere"),
    ("lost", 0, "accessibility_concern"),
    ("lost", 3, "price_concerns"),
    ("lost", 2, "price_concerns"),
    ("lost", 1, "chose_competitor"),
)


def _demo_deals(rng: random.Random, data: StoraSeed, now: int) -> list[dict[str, Any]]:
    deals = []
    staff_ids = [s["id"] for s in data.staff]
    site_ids = [s["id"] for s in data.sites]
    for index, (status, stage_index, lost_reason) in enumerate(DEMO_PLAN):
        contact = data.contacts[index % len(data.contacts)]
        unit = UNIT_LABELS[(index * 3) % len(UNIT_LABELS)]
        # Freshest first: a few within the hour, the rest spread over the last three weeks.
        updated = now - (index * 7 * MINUTE if index < 4 else rng.randrange(2 * HOUR, 21 * DAY))
        created = updated - rng.randrange(HOUR, 14 * DAY)
        move_in = now + rng.randrange(-7, 45) * DAY
        value_estimate = rng.choice(VALUE_ESTIMATES)
        note = rng.choice(NOTES)
        if index % 9 == 0:
            note = value_estimate  # as in Stora's own examples: same text, separate fields
        deals.append(
            _deal(
                deal_id=_hex_id(rng, "deal_"),
                name=f"{unit} — {contact['full_name']}",
                status=status,
                stage={"id": data.stages[stage_index]["id"]},
                contact_id=contact["id"],
                creator_id=rng.choice(staff_ids),
                assignee_id=None if index % 11 == 5 else rng.choice(staff_ids),
                site_id=None if index % 13 == 7 else rng.choice(site_ids),
                line_items=_line_items(rng, data),
                lost_reason=lost_reason,
                value_estimate=value_estimate,
                note=note,
                metadata={"source": "website"} if index % 4 == 0 else {},
                starts_at=None if index % 6 == 3 else iso(move_in - move_in % DAY + 9 * HOUR),
                created_at=iso(created),
                updated_at=iso(updated),
            )
        )
    # Hand-placed pitfalls (stora.md §11): keep their positions stable for the tests.
    by_contact = {c["full_name"]: c for c in data.contacts}
    deals[0]["name"] = "Unit 12B — Sarah Okafor"
    deals[1]["name"] = "Locker 7 — Zoë Łukasiewicz"
    deals[2]["name"] = "Container 3 — 株式会社ミナト"
    deals[3]["name"] = HTML_DEAL_NAME
    deals[3]["contact"] = {"id": by_contact["Bold & Co"]["id"]}
    deals[10]["name"] = "Website enquiry — Acme Corp"
    deals[10]["contact"] = {"id": by_contact["Acme Corp"]["id"]}
    deals[10]["creator"] = {"id": API_APPLICATION_ID}
    deals[10]["assignee"] = None
    deals[15]["stage"] = _deleted_stage(now)
    return deals


def _generated_deals(
    rng: random.Random, data: StoraSeed, count: int, now: int
) -> list[dict[str, Any]]:
    """Many plausible deals, fast: about 0.1 s for 10,000."""
    staff_ids = [s["id"] for s in data.staff]
    site_ids = [s["id"] for s in data.sites]
    stage_refs = [{"id": s["id"]} for s in data.stages]
    contacts = data.contacts
    statuses = ("open", "open", "open", "open", "won", "won", "lost")
    deals = []
    for index in range(count):
        contact = contacts[index % len(contacts)]
        status = statuses[rng.randrange(len(statuses))]
        updated = now - rng.randrange(90 * DAY)
        created = updated - rng.randrange(30 * DAY)
        stage = dict(stage_refs[rng.randrange(len(stage_refs))])
        if index % 997 == 500:
            stage = _deleted_stage(now)
        value_estimate = VALUE_ESTIMATES[index % len(VALUE_ESTIMATES)]
        unit = UNIT_LABELS[index % len(UNIT_LABELS)]
        deals.append(
            _deal(
                deal_id=f"deal_{rng.getrandbits(64):016x}",
                name=f"{unit} #{index + 1} — {contact['full_name']}",
                status=status,
                stage=stage,
                contact_id=contact["id"],
                creator_id=API_APPLICATION_ID if index % 50 == 0 else staff_ids[index % 7],
                assignee_id=None if index % 10 == 0 else staff_ids[rng.randrange(len(staff_ids))],
                site_id=site_ids[index % len(site_ids)],
                line_items=_generated_line_items(data, index),
                lost_reason=LOST_REASONS[index % 4] if status == "lost" else None,
                value_estimate=value_estimate,
                note=NOTES[index % len(NOTES)],
                metadata={},
                starts_at=None,
                created_at=iso(created),
                updated_at=iso(updated),
            )
        )
    return deals
