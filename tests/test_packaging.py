"""`pip install .` ships everything the app needs at run time."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_static_migrations_and_translations(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("wagtail_icarus_smtp-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = [
        "wagtail_icarus_smtp/templates/wagtail_icarus_smtp/panels/status.html",
        "wagtail_icarus_smtp/static/wagtail_icarus_smtp/js/status.js",
        "wagtail_icarus_smtp/migrations/0001_initial.py",
        "wagtail_icarus_smtp/migrations/0002_outbox.py",
        "wagtail_icarus_smtp/locale/de/LC_MESSAGES/django.mo",
        "wagtail_icarus_smtp/locale/en/LC_MESSAGES/django.mo",
        "wagtail_icarus_smtp/management/commands/icarus_smtp_status.py",
    ]
    assert [name for name in expected if name not in names] == []
    assert not any(name.startswith(("tests/", "example_site/")) for name in names)
