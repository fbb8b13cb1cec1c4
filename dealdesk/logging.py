"""A last line of defence: API keys never reach a log line, even by accident."""

from __future__ import annotations

import logging
import re

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
