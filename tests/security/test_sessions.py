"""Signed-in pages: never cached, varied on HX-Request; sessions end after 12 hours and after
the idle timeout; passwords of at least 12 characters, not common, not like the username."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from dealdesk.middleware import LAST_SEEN, SIGNED_IN_AT
from tests.deals.demo_deals import a_deal, url

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
LOGIN = "/accounts/login/"


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


def varies_on(response) -> set[str]:
    return {part.strip().lower() for part in response.get("Vary", "").split(",")}


def signed_in_pages(staff_client) -> list[tuple[str, dict]]:
    detail = a_deal("nodestash")
    return [
        ("/deals/", {}),
        ("/deals/?q=a", HTMX),
        (url("detail", detail), {}),
        (url("detail", detail), HTMX),
        (url("field_edit", detail, "name"), HTMX),
        (url("state", detail), HTMX),
        ("/board/", {}),
        ("/board/?pipeline=stora:stora", HTMX),
        ("/deals/nodestash/dl_missing0/", {}),  # a 404 page
        ("/admin/", {}),
        ("/admin/connections/connection/", {}),
    ]


def test_every_signed_in_page_is_private_no_store_and_varies_on_hx_request(staff_client):
    for path, headers in signed_in_pages(staff_client):
        response = staff_client.get(path, **headers)

        assert response.status_code < 500, path
        assert {"private", "no-store"} <= cache_directives(response), path
        assert "hx-request" in varies_on(response), path


def test_a_signed_in_post_answer_is_private_no_store_too(sales_client):
    response = sales_client.post("/views/save/", {"name": "Mine", "q": "x"}, **HTMX)

    assert response.status_code == 200
    assert {"private", "no-store"} <= cache_directives(response)


def test_the_login_page_varies_on_hx_request(client):
    response = client.get(LOGIN)

    assert "hx-request" in varies_on(response)


# --- Session lifetime -------------------------------------------------------------------------


def age_session(client, **seconds_ago: float) -> None:
    session = client.session
    for key, ago in seconds_ago.items():
        session[key] = time.time() - ago
    session.save()


def test_settings_say_twelve_hours_and_two_hours_idle(settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 60 * 60
    assert settings.DEALDESK_SESSION_IDLE_SECONDS == 2 * 60 * 60


def test_a_session_idle_for_longer_than_the_timeout_is_signed_out(sales_client, settings):
    sales_client.get("/deals/")
    age_session(sales_client, **{LAST_SEEN: settings.DEALDESK_SESSION_IDLE_SECONDS + 1})

    response = sales_client.get("/deals/")

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in sales_client.session


def test_a_session_used_within_the_idle_timeout_stays(sales_client, settings):
    sales_client.get("/deals/")
    age_session(sales_client, **{LAST_SEEN: settings.DEALDESK_SESSION_IDLE_SECONDS - 60})

    response = sales_client.get("/deals/")

    assert response.status_code == 200
    assert time.time() - sales_client.session[LAST_SEEN] < 5  # the request counts as activity


def test_a_busy_session_still_ends_twelve_hours_after_signing_in(sales_client, settings):
    sales_client.get("/deals/")
    age_session(sales_client, **{SIGNED_IN_AT: settings.SESSION_COOKIE_AGE + 1, LAST_SEEN: 30})

    response = sales_client.get("/deals/")

    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_the_idle_timeout_is_a_setting(sales_client, settings):
    settings.DEALDESK_SESSION_IDLE_SECONDS = 600
    sales_client.get("/deals/")
    age_session(sales_client, **{LAST_SEEN: 601})

    assert sales_client.get("/deals/").status_code == 302


def test_a_real_login_then_idle_timeout_through_the_login_page(client, settings):
    User.objects.create_user("morgan", password="a long enough passphrase")
    client.post(LOGIN, {"username": "morgan", "password": "a long enough passphrase"})
    assert client.get("/deals/").status_code == 200
    age_session(client, **{LAST_SEEN: settings.DEALDESK_SESSION_IDLE_SECONDS + 1})

    assert client.get("/deals/").status_code == 302


# --- Passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["Xq7#vLp2", "Xq7#vLp2wK9", "password1234", "123456789012", "morgan.smith.2026"],
    ids=["8 characters", "11 characters", "common", "numeric", "like the username"],
)
def test_weak_passwords_are_refused(password):
    user = User(username="morgan.smith", first_name="Morgan", email="morgan.smith@example.com")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_a_long_uncommon_password_is_accepted():
    user = User(username="morgan.smith")
    validate_password("Xq7#vLp2wK9!", user)  # 12 characters


def test_the_admin_refuses_an_eight_character_password(admin_client):
    response = admin_client.post(
        "/admin/auth/user/add/",
        {
            "username": "newbie",
            "password1": "Xq7#vLp2",
            "password2": "Xq7#vLp2",
            "usable_password": "true",
        },
    )

    assert response.status_code == 200
    assert not User.objects.filter(username="newbie").exists()
    assert "at least 12 characters" in response.content.decode()
