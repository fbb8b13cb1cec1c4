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
