"""The WSGI application of a gunicorn pool that serves only the NCIP responder.

    gunicorn patronage.ncip.wsgi:application --worker-class gthread --workers 2 --threads 10

A busy resource-sharing hub sends LookupUser after LookupUser; the proxy routes ``/ncip/`` to this pool and
everything else to ``patronage.wsgi``. It knows only ``/ncip/`` and ``/healthz`` (anything else is 404), so
it can leave out the middleware that only pages and the REST API need: sessions, authentication, messages,
CSRF (the responder is CSRF-exempt: its callers sign in with their client secret, never a cookie) and the
per-request Content-Security-Policy (the responder sets a fixed, stricter one on every answer). What stays:
``SecurityMiddleware`` (HTTPS redirect, HSTS, nosniff, referrer policy) and the frame-options header. Prepared
statements are on unless ``PATRONAGE_DB_PREPARED_STATEMENTS=0``; the other settings are the deployment's
own (``DATABASE_URL``, ``PATRONAGE_DB_HEALTH_CHECKS`` …).
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from patronage.core import database

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patronage.settings")

# Before the handler loads its middleware and resolves its first address; this process serves nothing else.
settings.ROOT_URLCONF = "patronage.ncip.pool_urls"
# Before the first connection: the pool repeats the same few statements, so prepared statements are its
# default (PostgreSQL's CPU per LookupUser more than halves); PATRONAGE_DB_PREPARED_STATEMENTS=0 turns them off.
if os.environ.get("PATRONAGE_DB_PREPARED_STATEMENTS", "").strip().lower() not in database.OFF:
    database.use_prepared_statements()
settings.MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
application = get_wsgi_application()
