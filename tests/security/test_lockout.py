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
