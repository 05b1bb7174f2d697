"""`pip install .` ships everything the app needs at run time, and the metadata is true."""

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

import wagtail_icarus_smtp
from tests.utils import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the files git tracks: the build writes nothing into
    the source tree, and a file git does not know cannot sneak into it."""
    source = tmp_path_factory.mktemp("source")
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, timeout=60
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (ROOT / name).is_file():  # a file deleted in the work tree is not shipped
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), "."],
        cwd=source,
        check=True,
        timeout=600,
    )
    return zipfile.ZipFile(next(out.glob("wagtail_icarus_smtp-*.whl")))


def metadata(wheel):
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(wheel.read(name))


def test_wheel_contains_templates_static_migrations_and_translations(wheel):
    names = set(wheel.namelist())

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
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_metadata_has_one_version_the_license_and_what_is_imported(wheel):
    meta = metadata(wheel)

    assert meta["Version"] == wagtail_icarus_smtp.__version__
    assert meta["License-Expression"] == "BSD-3-Clause"
    requires = " ".join(meta.get_all("Requires-Dist"))
    for imported in ("django", "wagtail", "django-q2", "django-filter", "cryptography"):
        assert imported in requires


def test_classifiers_name_exactly_the_versions_ci_tests():
    """Every Python and Django version CI runs is a classifier, and no other."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    classifiers = set(project["classifiers"])
    ci = (ROOT / ".ci" / "run").read_text()

    def versions(prefix):
        return {c.removeprefix(prefix) for c in classifiers if c.startswith(prefix)}

    assert versions("Programming Language :: Python :: 3.") == {"11", "13"}
    assert "python3.13" in ci and "PYTHON=python3 " in ci  # 3.11 is the machine's python3
    assert versions("Framework :: Django :: ") == {"5.2", "6.1"}
    assert '"django>=5.2,<5.3"' in ci and '"django>=6.1,<6.2"' in ci
    assert versions("Framework :: Wagtail :: ") == {"7", "8"}
    assert '"wagtail>=7.4,<7.5"' in ci and '"wagtail>=8.0,<8.1"' in ci
