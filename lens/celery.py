import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lens.settings")

app = Celery("lens")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks are imported from each room of audit/ (CELERY_IMPORTS in lens/settings.py).
