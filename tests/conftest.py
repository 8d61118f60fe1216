import os
import tempfile
from pathlib import Path

import pytest

from audit.accounts import services
from tests.factories import OrganizationFactory


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On SQLite the test database is a file (in memory where the machine has a tmpfs), never
    SQLite's in-memory database. Django hands the live server's request threads that one shared
    in-memory connection, and two requests at once on it can deadlock the process for good: one
    thread inside a query holds SQLite's connection mutex and waits for the GIL to run a Python
    SQL function (lens_lower, Django's date functions), while the other holds the GIL and waits
    for that mutex to read a row. With a file every thread opens its own connection, as it does
    when Lens runs on its embedded default."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
        _stale_databases_remove(folder)
        database.setdefault("TEST", {})["NAME"] = str(folder / f"lens-test-{os.getpid()}.sqlite3")


def _stale_databases_remove(folder: Path) -> None:
    """The files of runs that ended without their teardown (killed, or ended by a hang):
    in /dev/shm they would hold memory until the machine restarts."""
    for path in folder.glob("lens-test-*.sqlite3*"):
        pid = path.name.removeprefix("lens-test-").partition(".")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            path.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _short_live_streams(settings):
    """A live tail (/api/v1/audit-events/stream) lasts until its lifetime ends; through the test
    client it runs in the test's thread, so a test reading one to its end must not wait an hour."""
    settings.LENS_STREAM_MAX_SECONDS = 0.3
    settings.LENS_STREAM_POLL_SECONDS = 0.01


@pytest.fixture
def org(db):
    return OrganizationFactory(slug="acme", name="Acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(slug="globex", name="Globex")


def _key(org, scopes):
    return services.api_key_create(org=org, scopes=scopes, name="test")[1]


@pytest.fixture
def ingest_key(org):
    return _key(org, ["ingest"])


@pytest.fixture
def read_key(org):
    return _key(org, ["read"])


@pytest.fixture
def other_read_key(other_org):
    return _key(other_org, ["read"])


@pytest.fixture
def admin_key(org):
    return _key(org, ["admin"])


@pytest.fixture
def admin_user(org):
    return services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")


@pytest.fixture
def admin_user_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def viewer(org):
    return services.user_create(org=org, username="viewer", password="viewer-pass-123")


@pytest.fixture
def user_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def receiver(settings):
    """A real HTTP receiver on 127.0.0.1 (tests/alerts/receivers.py), which alert
    destinations may name in the test (LENS_DESTINATION_ALLOWED_HOSTS)."""
    from tests.alerts.receivers import receiver_start, receiver_stop

    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = receiver_start()
    yield receiver
    receiver_stop(receiver)


@pytest.fixture(autouse=True)
def _clear_throttle_cache():
    from django.core.cache import cache

    cache.clear()
