"""Onboarding and configuration, as written down: every variable documented, the README's steps consistent."""

import re
from pathlib import Path

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
