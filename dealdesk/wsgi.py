"""WSGI entry point (gunicorn dealdesk.wsgi; ``runserver`` loads it too)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dealdesk.settings")
application = get_wsgi_application()

# A demo/demo login left by `make run` never outlives a switch to production (DEBUG off or a
# real key), whether or not migrate ran since.
from dealdesk.demo.setup import demo_retire_at_server_start  # noqa: E402

demo_retire_at_server_start()
