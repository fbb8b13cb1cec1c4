#!/usr/bin/env python
"""Django's command-line utility for DealDesk."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dealdesk.settings")
    from django.core.management import execute_from_command_line

    from dealdesk.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
