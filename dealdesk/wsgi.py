"""WSGI entry point (gunicorn dealdesk.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dealdesk.settings")
application = get_wsgi_application()
