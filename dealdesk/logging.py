"""A last line of defence: API keys never reach a log line or an error page, even by accident."""

from __future__ import annotations

import logging
import re

from django.views.debug import SafeExceptionReporterFilter

# Bearer tokens and the key prefixes both vendors use.
SECRET_PATTERN = re.compile(r"(Bearer\s+)\S+|\bnds_(?:live|test)_\w+", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_PATTERN.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hides ``sensitive_variables`` and ``sensitive_post_parameters`` on DEBUG error pages too
    (Django's own filter only does so with DEBUG off): the transport's outgoing headers hold a
    bearer token, and a development error page is easily shared."""

    def is_active(self, request) -> bool:
        return True
