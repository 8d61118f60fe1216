import pytest


@pytest.fixture
def get(api_client, read_key):
    """GET with the read key (or `key=None` for none); params may repeat as lists."""

    def _get(url, params=None, key=read_key, **headers):
        if key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return api_client.get(url, params or {}, **headers)

    return _get


@pytest.fixture
def warm(get):
    """One request first, so the key's once-a-minute last-used write is out of the query counts."""
    get("/api/v1/traces")
    return get
