import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lens.settings")

app = Celery("lens")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks are imported from each room of audit/ (CELERY_IMPORTS in lens/settings.py).

# Connections across tasks. Celery's Django fixup closes every database connection before
# and after each task unless CELERY_DB_REUSE_MAX is set (then it closes them every N tasks
# regardless of their health): a new PostgreSQL session per batch (473 sessions for 467
# batches, measured), so CONN_MAX_AGE never helped a worker. Lens sets the limit out of
# reach (lens/settings.py) and does here what Django does around a request instead:
# a connection is kept until it is older than CONN_MAX_AGE, and closed once it has seen an
# error it does not survive (the database restarted), so the retry reconnects.


def _close_old_connections(**kwargs):
    from django.db import close_old_connections

    if not getattr(getattr(kwargs.get("sender"), "request", None), "is_eager", False):
        close_old_connections()


def _close_all_connections(**kwargs):
    """A task that failed or will retry may have left its connection in any state: drop it."""
    from django.db import connections

    if not getattr(getattr(kwargs.get("sender"), "request", None), "is_eager", False):
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close()


signals.task_prerun.connect(_close_old_connections, weak=False)
signals.task_postrun.connect(_close_old_connections, weak=False)
signals.task_failure.connect(_close_all_connections, weak=False)
signals.task_retry.connect(_close_all_connections, weak=False)
