"""Any upstream text through the link builders: a link is either absent or exactly the kind it
claims to be (a dialable tel:, a valid mailto:, an https URL to the template's own host)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from dealdesk.deals.contact_links import mailto_href, tel_href, website_href
from dealdesk.providers.base import link_from_template

FAST = settings(max_examples=100, deadline=None)
PHONE_ALPHABET = st.sampled_from(list("+0123456789 ().-/x;:#\n\tabc@<>\"'"))


@FAST
@given(st.one_of(st.text(), st.text(PHONE_ALPHABET)))
def test_tel_is_empty_or_a_dialable_number(text):
    href = tel_href(text)
    assert href == "" or re.fullmatch(r"tel:\+?[0-9]{6,15}", href)


@FAST
@given(st.one_of(st.text(), st.emails()))
def test_mailto_is_empty_or_carries_no_header_or_markup(text):
    href = mailto_href(text)
    assert href == "" or (
        href.startswith("mailto:") and not set(href) & set("?&<>\"' \n") and "@" in href
    )


@FAST
@given(st.text())
def test_website_is_empty_or_https_to_a_bare_host(text):
    href = website_href(text)
    if href:
        parts = urlsplit(href)
        assert parts.scheme == "https" and parts.path == "" and not parts.query


HOSTS = st.sampled_from(
    ["app.stora.test", "evil.example", "", "a@b.example", "app.stora.test:8443"]
)


@FAST
@given(
    scheme=st.sampled_from(["https://", "http://", "javascript:", "//", ""]),
    host=HOSTS,
    middle=st.sampled_from(["", "/", "/bo"]),
    tail=st.sampled_from(["", "?x=1", "#f", "{rel}", "/x"]),
    rel=st.one_of(st.just("/deals/deal_abc"), st.text(max_size=20)),
)
def test_a_template_link_is_none_or_https_to_the_templates_host(scheme, host, middle, tail, rel):
    template = f"{scheme}{host}{middle}{{rel}}{tail}"
    url = link_from_template(template, rel)
    if url is None:
        return
    parts = urlsplit(url)
    assert parts.scheme == "https"
    assert parts.netloc == host and "@" not in parts.netloc
    assert not parts.query and not parts.fragment
