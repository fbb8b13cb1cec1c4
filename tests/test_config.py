"""Settings come from the environment; a bad variable stops start-up with one clear line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management.utils import get_random_secret_key

from dealdesk import config
from dealdesk.config import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_VARIABLES = (
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "CACHE_URL",
    "PORT",
    "DEALDESK_ENCRYPTION_KEY",
    "STORA_API_URL",
    "STORA_API_KEY",
    "NODESTASH_API_URL",
    "NODESTASH_API_KEY",
    "SECURE_SSL_REDIRECT",
    "SECURE_COOKIES",
    "SECURE_HSTS_SECONDS",
    "LOG_LEVEL",
    "DEALDESK_HTTP_READ_TIMEOUT",
    "AXES_FAILURE_LIMIT",
    "TIME_ZONE",
    "DEALDESK_REFERENCE_TTL",
)


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess:
    """Run ``manage.py`` with the production settings and only the given variables set."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in CONFIG_VARIABLES and not name.startswith(("DJANGO_", "PYTEST"))
    }
    environment["DJANGO_SETTINGS_MODULE"] = "dealdesk.settings"
    environment.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- Parsing, in-process -----------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch):
    for name in CONFIG_VARIABLES:
        # setenv first so monkeypatch restores (or removes) it, even when .env reading sets it.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_apply_when_variables_are_absent(clean_environment):
    assert config.env_bool("DEBUG", default=False) is False
    assert config.env_int("PORT", default=8000) == 8000
    assert config.env_list("ALLOWED_HOSTS", default=["localhost"]) == ["localhost"]
    assert (
        config.env_http_url("STORA_API_URL", default="https://public-api.stora.co")
        == "https://public-api.stora.co"
    )
    assert (
        config.env_http_url("NODESTASH_API_URL", default="https://api.nodestash.io/v1")
        == "https://api.nodestash.io/v1"
    )
    database = config.env_database("DATABASE_URL", default="sqlite:////tmp/dealdesk.sqlite3")
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == "/tmp/dealdesk.sqlite3"
    cache = config.env_cache("CACHE_URL", default="locmemcache://dealdesk")
    assert cache["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_values_are_parsed_from_the_environment(clean_environment):
    clean_environment.setenv("DEBUG", "Yes")
    clean_environment.setenv("PORT", " 9000 ")
    clean_environment.setenv("ALLOWED_HOSTS", "a.example.com, b.example.com,")
    clean_environment.setenv("STORA_API_URL", "http://127.0.0.1:9999/stora/")
    clean_environment.setenv("DATABASE_URL", "postgres://deal:pw@db.internal:5432/dealdesk")
    clean_environment.setenv("CACHE_URL", "redis://cache.internal:6379/1")
    assert config.env_bool("DEBUG", default=False) is True
    assert config.env_int("PORT", default=8000) == 9000
    assert config.env_list("ALLOWED_HOSTS", default=[]) == ["a.example.com", "b.example.com"]
    assert config.env_http_url("STORA_API_URL", default="") == "http://127.0.0.1:9999/stora"
    database = config.env_database("DATABASE_URL", default="")
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"]) == ("db.internal", "dealdesk")
    assert "redis" in config.env_cache("CACHE_URL", default="")["BACKEND"].lower()


@pytest.mark.parametrize(
    ("variable", "value", "parse"),
    [
        ("DEBUG", "maybe", lambda: config.env_bool("DEBUG", default=False)),
        ("PORT", "abc", lambda: config.env_int("PORT", default=8000)),
        ("PORT", "70000", lambda: config.env_int("PORT", default=8000, maximum=65535)),
        ("STORA_API_URL", "ftp://x", lambda: config.env_http_url("STORA_API_URL", default="")),
        (
            "NODESTASH_API_URL",
            "nodestash",
            lambda: config.env_http_url("NODESTASH_API_URL", default=""),
        ),
        ("DATABASE_URL", "nosuch://x", lambda: config.env_database("DATABASE_URL", default="")),
        ("CACHE_URL", "bogus://x", lambda: config.env_cache("CACHE_URL", default="")),
        (
            "DEALDESK_ENCRYPTION_KEY",
            "too-short",
            lambda: config.env_fernet_key("DEALDESK_ENCRYPTION_KEY", default=""),
        ),
    ],
)
def test_malformed_value_raises_an_error_naming_the_variable(
    clean_environment, variable, value, parse
):
    clean_environment.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        parse()
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_dotenv_file_is_read_and_the_real_environment_wins(clean_environment, tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("STORA_API_KEY=from-dotenv\nNODESTASH_API_KEY=from-dotenv\n")
    clean_environment.setenv("NODESTASH_API_KEY", "from-environment")
    config.read_dotenv(str(dotenv))
    assert os.environ["STORA_API_KEY"] == "from-dotenv"
    assert os.environ["NODESTASH_API_KEY"] == "from-environment"


def test_missing_dotenv_file_is_fine(clean_environment, tmp_path):
    config.read_dotenv(str(tmp_path / "absent.env"))
    assert "STORA_API_KEY" not in os.environ


# --- Start-up, in a subprocess -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"DEBUG": "true", "DATABASE_URL": "nosuch://x"}, "DATABASE_URL"),
        ({"DEBUG": "true", "DATABASE_URL": "not-a-url"}, "DATABASE_URL"),
        ({"DEBUG": "true", "CACHE_URL": "bogus://x"}, "CACHE_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "true", "PORT": "abc"}, "PORT"),
        ({"DEBUG": "false"}, "SECRET_KEY"),
        (
            {"DEBUG": "true", "DEALDESK_ENCRYPTION_KEY": "not-a-fernet-key"},
            "DEALDESK_ENCRYPTION_KEY",
        ),
        (
            {"DEBUG": "false", "SECRET_KEY": get_random_secret_key()},
            "DEALDESK_ENCRYPTION_KEY",
        ),
        ({"DEBUG": "true", "STORA_API_URL": "ftp://x"}, "STORA_API_URL"),
        ({"DEBUG": "true", "NODESTASH_API_URL": "https://"}, "NODESTASH_API_URL"),
        ({"DEBUG": "true", "AXES_FAILURE_LIMIT": "0"}, "AXES_FAILURE_LIMIT"),
    ],
)
def test_bad_variable_stops_startup_with_one_line_naming_it(variables, named):
    result = manage("check", **variables)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {named}: ")


def test_development_defaults_start_with_debug_on():
    result = manage("check", DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        # Its own database: a developer's db.sqlite3 may hold `make run`'s demo login (E001).
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DEBUG="false",
        SECRET_KEY=get_random_secret_key(),
        ALLOWED_HOSTS="dealdesk.example.com",
        DEALDESK_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


# --- Missing is not malformed ------------------------------------------------------------------


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["check"], ["check", "--deploy"]])
def test_a_missing_encryption_key_is_reported_as_missing_not_malformed(command):
    line = one_line(manage(*command, DEBUG="false", SECRET_KEY=get_random_secret_key()))

    assert line.startswith(
        "Configuration error: DEALDESK_ENCRYPTION_KEY: not set, and it is required when DEBUG is "
        "off; make one with: python -c "
    )
    assert "Fernet.generate_key()" in line
    assert "expected" not in line and "malformed" not in line


def test_a_missing_secret_key_is_reported_as_missing_with_how_to_make_one():
    line = one_line(manage("check", DEBUG="false"))

    assert line.startswith(
        "Configuration error: SECRET_KEY: not set, and it is required when DEBUG is off; "
    )
    assert "get_random_secret_key()" in line


def test_a_malformed_encryption_key_is_reported_as_malformed_without_echoing_it():
    line = one_line(
        manage(
            "check",
            DEBUG="false",
            SECRET_KEY=get_random_secret_key(),
            DEALDESK_ENCRYPTION_KEY="sk_live_pasted_in_the_wrong_place",
        )
    )

    assert line.startswith("Configuration error: DEALDESK_ENCRYPTION_KEY: malformed: expected a ")
    assert "required" not in line
    assert "sk_live_pasted_in_the_wrong_place" not in line
