"""Repeated failed logins lock the account out (django-axes, AXES_FAILURE_LIMIT = 5): the sixth
attempt is refused even with the right password, and the lockout page says why."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
PASSWORD = "the-right-password-1"


@pytest.fixture
def user(settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    return User.objects.create_user("morgan", password=PASSWORD)


def attempt(client: Client, password: str):
    return client.post(LOGIN, {"username": "morgan", "password": password})


def test_the_sixth_attempt_with_the_right_password_is_locked_out(user):
    client = Client()
    statuses = [attempt(client, "wrong-password").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure locks the account

    response = attempt(client, PASSWORD)

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_four_failures_then_the_right_password_logs_in(user):
    client = Client()
    for _ in range(4):
        attempt(client, "wrong-password")

    response = attempt(client, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_lockout_is_per_user_and_address(user):
    User.objects.create_user("robin", password=PASSWORD)
    client = Client()
    for _ in range(6):
        attempt(client, "wrong-password")

    other = client.post(LOGIN, {"username": "robin", "password": PASSWORD})

    assert other.status_code == 302


# --- Per address, across usernames (password spraying) ----------------------------------------


def spray(client: Client, count: int) -> list[int]:
    """One wrong password for each of ``count`` different usernames, as a sprayer would."""
    return [
        client.post(LOGIN, {"username": f"user{n}", "password": "Summer2026!"}).status_code
        for n in range(count)
    ]


def test_spraying_many_usernames_from_one_address_locks_that_address(user, settings):
    assert settings.DEALDESK_ADDRESS_FAILURE_LIMIT == 20
    sprayer = Client(REMOTE_ADDR="203.0.113.7")
    assert spray(sprayer, 20) == [200] * 20  # no single username ever reaches its limit

    response = sprayer.post(LOGIN, {"username": "morgan", "password": PASSWORD})

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in sprayer.session


def test_below_the_address_limit_the_right_password_still_logs_in(user):
    client = Client(REMOTE_ADDR="203.0.113.8")
    spray(client, 19)

    response = client.post(LOGIN, {"username": "morgan", "password": PASSWORD})

    assert response.status_code == 302


def test_the_address_lockout_leaves_other_addresses_alone(user):
    spray(Client(REMOTE_ADDR="203.0.113.9"), 25)

    response = Client(REMOTE_ADDR="198.51.100.1").post(
        LOGIN, {"username": "morgan", "password": PASSWORD}
    )

    assert response.status_code == 302


def test_the_address_limit_is_a_setting(user, settings):
    settings.DEALDESK_ADDRESS_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR="203.0.113.10")
    spray(client, 3)

    assert client.post(LOGIN, {"username": "morgan", "password": PASSWORD}).status_code == 429
