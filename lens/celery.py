import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lens.settings")

app = Celery("lens")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
