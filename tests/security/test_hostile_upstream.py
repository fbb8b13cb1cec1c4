"""A hostile or broken upstream body is "a response DealDesk could not read", never a 500; and no
error page, even with DEBUG on, shows the bearer token the transport sends."""

from __future__ import annotations

import sys

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from dealdesk.providers import adapter_for
from dealdesk.providers.base import Unavailable
from dealdesk.providers.http import ApiTransport
from dealdesk.sandbox import DEFAULT_STORA_TOKEN
from dealdesk.sync.engine import sync_run
from tests.reliability.conftest import alerts, text

NESTED = "[" * 50_000 + "]" * 50_000
HOSTILE_BODIES = {
    "nested-50000": NESTED,
    "nested-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "huge-integer": '{"data": [' + "9" * 5_000 + "]}",
    "huge-float": '{"data": [1e999]}',
    "nan": '{"data": [NaN]}',
    "invalid-utf8": b'{"data": [], "meta": {"request_id": "\xff\xfe"}}',
}


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_an_unparsable_success_body_is_unavailable_malformed(
    sandbox, stora_info, nodestash_info, provider, body
):
    info = stora_info if provider == "stora" else nodestash_info
    sandbox.fail_next(provider, 1, 200, body)

    with pytest.raises(Unavailable) as caught:
        adapter_for(info).ping()

    assert caught.value.code == "malformed_response"
    assert caught.value.message == f"{info.label} sent a response DealDesk could not read."


@pytest.mark.parametrize("provider", ["stora", "nodestash"])
def test_an_unparsable_error_body_still_maps_by_status(
    sandbox, stora_info, nodestash_info, provider
):
    info = stora_info if provider == "stora" else nodestash_info
    sandbox.fail_next(provider, 3, 503, NESTED)

    with pytest.raises(Unavailable) as caught:
        adapter_for(info).ping()

    assert caught.value.status == 503


@pytest.mark.django_db
def test_deeply_nested_json_met_by_the_sync_is_an_alert_on_the_list_not_a_500(
    sales_client, sandbox, connections
):
    sandbox.fail_next("stora", 50, 200, NESTED)
    sync_run(connections["stora"])

    response = sales_client.get("/deals/")

    assert response.status_code == 200
    (alert,) = alerts(text(response))
    assert "Showing Stora deals as of" in alert
    assert "Stora sent a response DealDesk could not read." in alert


@pytest.mark.django_db
def test_deeply_nested_json_on_a_deal_refresh_is_an_alert_not_a_500(sales_client, sandbox):
    deal_id = next(iter(sandbox.simulators["nodestash"].deals))
    sandbox.fail_next("nodestash", 50, 200, NESTED)

    response = sales_client.post(f"/deals/nodestash/{deal_id}/refresh/", follow=True)

    assert response.status_code == 200
    assert "nodestash sent a response DealDesk could not read." in text(response)


def test_a_debug_error_page_never_shows_the_bearer_token(settings, stora_info, sandbox):
    """Any exception raised while a request is being sent (here: a body that cannot be encoded)
    leaves the Authorization header in the frames' local variables; the report hides them."""
    settings.DEBUG = True
    transport = ApiTransport(
        stora_info,
        error_mapper=lambda *args: Unavailable("x"),
        budget=adapter_for(stora_info).budget,
    )
    try:
        transport.request("POST", "/2025-09/deals", json={"unencodable": object()})
    except TypeError:
        exc_type, exc_value, tb = sys.exc_info()
    else:
        raise AssertionError("the unencodable body should raise")
    request = RequestFactory().get("/deals/")

    html = ExceptionReporter(request, exc_type, exc_value, tb).get_traceback_html()

    assert "providers/http.py" in html  # the transport's frame is in the report…
    assert DEFAULT_STORA_TOKEN not in html  # …without the token its headers carried
