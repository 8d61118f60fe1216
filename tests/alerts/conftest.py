import pytest

from tests.alerts.receivers import receiver_start, receiver_stop


@pytest.fixture
def receiver(settings):
    """A real HTTP receiver on 127.0.0.1, which destinations may name in these tests."""
    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = receiver_start()
    yield receiver
    receiver_stop(receiver)
