"""Links built from upstream text: only what plausibly is a phone number, an email address or a
domain becomes an href."""

from __future__ import annotations

import pytest

from dealdesk.deals.contact_links import mailto_href, tel_href, website_href


@pytest.mark.parametrize(
    ("phone", "href"),
    [
        ("+44 7700 900654", "tel:+447700900654"),
        ("0113 496 0000", "tel:01134960000"),
        ("+49-30-555-0042", "tel:+49305550042"),
        ("(020) 7946 0321", "tel:02079460321"),
        ("", ""),
        ("call me", ""),
        ("12345", ""),  # too short to dial
        ("+1234567890123456", ""),  # longer than E.164 allows
        ("+44 7700 900654;ext=2", ""),
        ("javascript:alert(1)", ""),
        ("+44 7700\n900654", ""),
    ],
)
def test_a_tel_link_only_from_a_plausible_phone_number(phone, href):
    assert tel_href(phone) == href


@pytest.mark.parametrize(
    ("email", "href"),
    [
        ("amara.nwosu@example.com", "mailto:amara.nwosu@example.com"),
        ("a+b@example.co.uk", "mailto:a+b@example.co.uk"),
        ("not an email", ""),
        ("x@y", ""),
        ("a@example.com?cc=boss@example.com", ""),
        ('"><script>@example.com', ""),
    ],
)
def test_a_mailto_link_only_from_a_valid_address(email, href):
    assert mailto_href(email) == href


@pytest.mark.parametrize(
    ("domain", "href"),
    [
        ("acme.example", "https://acme.example"),
        ("Sub.Acme.Example", "https://sub.acme.example"),
        ("javascript:alert(1)", ""),
        ("acme.example/path", ""),
        ("localhost", ""),
        ("", ""),
    ],
)
def test_a_website_link_only_from_a_bare_domain(domain, href):
    assert website_href(domain) == href
