"""Onboarding and configuration, as written down: every variable documented, the README's steps consistent."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_variable_the_settings_read_is_in_the_readme():
    read = set(re.findall(r'env(?:\.\w+)?\("([A-Z_]+)"', (ROOT / "lens" / "settings.py").read_text()))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("## Production")]
    documented = set(re.findall(r"`([A-Z_]+)`", table))
    assert len(read) > 20 and read <= documented, sorted(read - documented)


def test_make_run_prints_a_key_of_the_organization_it_logs_you_in_to_and_the_readme_uses_it():
    """Before, the README's key was for `acme` while `make run` logged you in to `demo`:
    what you sent never showed in the browser."""
    script = (ROOT / "scripts" / "run").read_text()
    login_org = re.search(r"create_user --org (\S+)", script).group(1)
    key_org = re.search(r"key=\$\(manage create_api_key --org (\S+)", script).group(1)
    assert login_org == key_org == "demo"
    readme = (ROOT / "README.md").read_text()
    sending = readme[readme.index("## Sending events"):readme.index("## Reading and exporting")]
    assert set(re.findall(r"--org (\S+)", sending)) == {login_org}


@pytest.mark.parametrize("environ,slots", [({}, 8), ({"DB_POOL_MAX_SIZE": "8"}, 4), ({"DB_POOL_MAX_SIZE": "1"}, 1),
                                           ({"DB_POOL_MAX_SIZE": "8", "LENS_EXPORTS_PER_PROCESS": "2"}, 2)])
def test_exports_per_process_default_to_half_the_pool_or_eight_without_one(environ, slots):
    env = {k: v for k, v in os.environ.items() if k not in ("DB_POOL_MAX_SIZE", "LENS_EXPORTS_PER_PROCESS")}
    read = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.LENS_EXPORTS_PER_PROCESS)"],
        env={**env, **environ, "DJANGO_SETTINGS_MODULE": "lens.settings"}, cwd=ROOT, capture_output=True, text=True,
    )
    assert read.stdout.strip() == str(slots), read.stderr
