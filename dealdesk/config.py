"""Reading DealDesk's configuration from the environment.

Every variable is parsed strictly: a malformed value stops start-up with one line that names the
variable (see ``manage.py``), never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import os
import warnings
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}

# Documented development defaults. They are refused when DEBUG is off.
DEV_SECRET_KEY = "django-insecure-dealdesk-development-only-key-do-not-use-in-production"
DEV_ENCRYPTION_KEY = "ZGVhbGRlc2stZGV2ZWxvcG1lbnQtb25seS1rZXktMDA="  # base64 of 32 ASCII bytes
MAKE_SECRET_KEY = (
    'python -c "from django.core.management.utils import get_random_secret_key; '
    'print(get_random_secret_key())"'
)
MAKE_FERNET_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class ConfigError(ImproperlyConfigured):
    """A configuration problem that names the variable at fault."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {problem}")


def raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_bool(name: str, *, default: bool) -> bool:
    value = raw(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ConfigError(name, f"expected true or false, got {value!r}")


def env_int(name: str, *, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
    value = raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise ConfigError(name, f"expected a number from {minimum} to {maximum}, got {number}")
    return number


def env_float(name: str, *, default: float, minimum: float, maximum: float) -> float:
    value = raw(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise ConfigError(name, f"expected a number from {minimum} to {maximum}, got {number}")
    return number


def env_str(name: str, *, default: str = "") -> str:
    value = raw(name)
    return default if value in (None, "") else value


def missing(name: str, *, when: str, make_with: str) -> ConfigError:
    """A required variable that is not set (or empty), said as such rather than as malformed."""
    return ConfigError(name, f"not set, and it is required {when}; make one with: {make_with}")


def env_required_str(name: str, *, default: str, when: str, make_with: str) -> str:
    value = env_str(name, default=default)
    if not value:
        raise missing(name, when=when, make_with=make_with)
    return value


def env_list(name: str, *, default: list[str]) -> list[str]:
    value = raw(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_http_url(name: str, *, default: str) -> str:
    value = env_str(name, default=default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(name, f"expected an http(s) URL, got {value!r}")
    return value


def env_database(name: str, *, default: str) -> dict:
    value = env_str(name, default=default)
    scheme = value.split("://", 1)[0] if "://" in value else ""
    # django-environ passes an unknown scheme through as the ENGINE, which fails later with a
    # traceback; refuse it here so the error names the variable.
    if scheme not in environ.Env.DB_SCHEMES:
        raise ConfigError(name, f"unsupported database URL scheme in {value.split(':', 1)[0]!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config: dict[str, Any] = environ.Env.db_url_config(value)
    except Exception as error:  # django-environ raises several types for bad URLs
        raise ConfigError(name, f"not a database URL ({error})") from None
    if not config.get("ENGINE"):
        raise ConfigError(name, f"unsupported database URL scheme in {scheme!r}")
    return config


def env_cache(name: str, *, default: str) -> dict:
    value = env_str(name, default=default)
    try:
        config: dict[str, Any] = environ.Env.cache_url_config(value)
    except Exception as error:
        raise ConfigError(name, f"not a cache URL ({error})") from None
    return config


def env_fernet_key(name: str, *, default: str, when: str = "when DEBUG is off") -> str:
    """A Fernet key; when it is not set and ``default`` is empty, it is reported missing."""
    value = env_str(name, default=default)
    if not value:
        raise missing(name, when=when, make_with=MAKE_FERNET_KEY)
    try:
        decoded = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 32:
        # Never echo the value: it may be a real key pasted into the wrong variable.
        raise ConfigError(
            name,
            f"malformed: expected a Fernet key (32 url-safe base64-encoded bytes), got a "
            f"{len(value)}-character value that is not one; make one with: {MAKE_FERNET_KEY}",
        )
    return value


def read_dotenv(path: str) -> None:
    """Load ``.env`` when present; variables already in the environment win."""
    if os.path.exists(path):
        environ.Env.read_env(path, overwrite=False)
