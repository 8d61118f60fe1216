"""The ASGI application: what production serves (gunicorn with uvicorn workers), so a live
tail (SSE) waits on the event loop instead of holding a thread."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lens.settings")
# Under ASGI each request's sync code runs in a thread of its own: a connection kept past
# the request would be left behind with that thread. On PostgreSQL a pool per process keeps
# them instead (lens/settings.py); elsewhere none is kept unless asked for.
os.environ.setdefault("DB_POOL_MAX_SIZE", "8")
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
application = get_asgi_application()
