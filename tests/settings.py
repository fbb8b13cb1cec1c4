"""Settings for the test suite: the production settings module with test-only secrets."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "x" * 40)
os.environ.setdefault("DEALDESK_ENCRYPTION_KEY", "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0wMDAwMDA=")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("DEALDESK_HTTP_READ_TIMEOUT", "5")

from dealdesk.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = (  # noqa: F405
    "django.contrib.staticfiles.storage.StaticFilesStorage"
)
WHITENOISE_USE_FINDERS = True
AXES_ENABLED = True

# Tests sync explicitly (tests/conftest.py); the queue runs a task inline when one is enqueued.
DEALDESK_SYNC_AUTOSTART = False
HUEY = {"name": "dealdesk-tests", "huey_class": "huey.MemoryHuey", "immediate": True}
