"""Contacts at hand: a deal's contact, company or site and links into the vendor's app, from the
synced reference data (no upstream call), with every link checked before it becomes an href.

Upstream text is shown escaped, always; it becomes a link only when it is plausibly what the
link says: ``mailto:`` for a valid email address, ``tel:`` for something that dials like a phone
number, ``https://`` for a bare domain name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from dealdesk.providers.base import (
    CatalogueItem,
    ContactInfo,
    Deal,
    DealLink,
    LineItem,
    PlaceInfo,
    ReferenceData,
    humanise,
)

# A phone number as people write it: an optional leading +, digits, and spaces, dots, dashes,
# slashes or brackets between them; 6 to 15 digits (E.164 allows at most 15).
PHONE_SHAPE = re.compile(r"\+?[0-9()][0-9 ().\-/]*[0-9]")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 6, 15
DOMAIN_SHAPE = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def tel_href(phone: str) -> str:
    """``tel:+447700900654`` for a plausible phone number, else ""."""
    text = (phone or "").strip()
    if not PHONE_SHAPE.fullmatch(text):
        return ""
    digits = re.sub(r"\D", "", text)
    if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
        return ""
    return "tel:" + ("+" if text.startswith("+") else "") + digits


def mailto_href(email: str) -> str:
    """``mailto:`` for a valid email address, else ""."""
    text = (email or "").strip()
    try:
        validate_email(text)
    except ValidationError:
        return ""
    return "mailto:" + quote(text, safe="@.+-_")


def website_href(domain: str) -> str:
    """``https://acme.example`` for a bare domain name (what nodestash keeps), else ""."""
    text = (domain or "").strip().lower()
    return f"https://{text}" if DOMAIN_SHAPE.fullmatch(text) else ""


@dataclass(frozen=True)
class ContactCard:
    name: str
    email: str = ""
    email_href: str = ""
    phone: str = ""
    phone_href: str = ""

    @classmethod
    def of(cls, contact: ContactInfo) -> ContactCard:
        return cls(
            name=contact.name,
            email=contact.email,
            email_href=mailto_href(contact.email),
            phone=contact.phone,
            phone_href=tel_href(contact.phone),
        )


@dataclass(frozen=True)
class PlaceCard:
    name: str
    label: str  # "Company" or "Site"
    address: str = ""
    website: str = ""
    website_href: str = ""

    @classmethod
    def of(cls, place: PlaceInfo) -> PlaceCard:
        return cls(
            name=place.name,
            label=humanise(place.kind) or "Company",
            address=place.address,
            website=place.website,
            website_href=website_href(place.website),
        )


@dataclass(frozen=True)
class NamedLineItem:
    """A line item as people read it: its type, its target's name and size or cover level."""

    type_label: str
    item_id: str
    name: str  # the id itself when the catalogue does not know it
    detail: str
    quantity: int | None
    known: bool


@dataclass(frozen=True)
class DealContacts:
    """What the deal page shows to reach the customer (all from the synced store)."""

    contact: ContactCard | None = None
    place: PlaceCard | None = None
    links: tuple[DealLink, ...] = ()
    line_items: tuple[NamedLineItem, ...] = ()

    @property
    def shown(self) -> bool:
        return bool(self.contact or self.place or self.links)


def named_line_item(item: LineItem, known: CatalogueItem | None) -> NamedLineItem:
    return NamedLineItem(
        type_label=humanise(item.type),
        item_id=item.item_id,
        name=known.name if known else item.item_id,
        detail=known.detail if known else "",
        quantity=item.quantity,
        known=known is not None,
    )


def deal_contacts(deal: Deal, ref: ReferenceData, links: tuple[DealLink, ...]) -> DealContacts:
    """The deal's contact and company (or site) with their details, links already checked."""
    contact = ref.contact(deal.contact.id) if deal.contact and deal.contact.id else None
    place_ref = deal.company or deal.site
    place = ref.place(place_ref.id) if place_ref and place_ref.id else None
    if place is None and contact is not None and contact.company_id:
        place = ref.place(contact.company_id)  # the contact's own company
    return DealContacts(
        contact=ContactCard.of(contact) if contact else None,
        place=PlaceCard.of(place) if place else None,
        links=links,
        line_items=tuple(
            named_line_item(item, ref.catalogue_item(item.item_id)) for item in deal.line_items
        ),
    )
