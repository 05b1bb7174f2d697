"""System checks name what to set, with stable ids."""

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from tests.utils import ROOT


def ids():
    return {message.id for message in run_checks() if message.id.startswith("wagtail_icarus_smtp")}


def test_a_correct_configuration_has_no_messages(settings):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"  # the test runner swaps it
    assert ids() == set()


def test_backend_not_set(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert "wagtail_icarus_smtp.W001" in ids()


def test_django_q_not_installed():
    """Run in a process of its own: changing INSTALLED_APPS in-process upsets URL routers."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings=tests.settings_without_q"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "wagtail_icarus_smtp.E001" in result.stderr + result.stdout
    assert result.returncode != 0


@pytest.mark.parametrize(
    "cluster",
    [{"timeout": 60, "retry": 60, "max_attempts": 3}, {"retry": 60, "max_attempts": 3}],
)
def test_q_cluster_timeout_not_below_retry(settings, cluster):
    settings.Q_CLUSTER = {"orm": "default", **cluster}
    assert "wagtail_icarus_smtp.E002" in ids()


def test_q_cluster_unbounded_attempts(settings):
    settings.Q_CLUSTER = {"orm": "default", "timeout": 30, "retry": 60, "max_attempts": 0}
    assert "wagtail_icarus_smtp.E003" in ids()


def test_no_dedicated_encryption_key_is_a_warning(settings):
    settings.ICARUS_SMTP_ENCRYPTION_KEYS = None
    assert "wagtail_icarus_smtp.W002" in ids()


def test_unknown_setting_name(settings):
    settings.ICARUS_SMTP_TIMOUT = 5
    assert "wagtail_icarus_smtp.E004" in ids()


def test_plaintext_port_mode_is_rejected(settings):
    settings.ICARUS_SMTP_PORTS = {25: "plain"}
    assert "wagtail_icarus_smtp.E005" in ids()


def test_a_drain_longer_than_half_the_task_timeout_is_a_warning(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 40, "retry": 80}
    settings.ICARUS_SMTP_DRAIN_SECONDS = 30
    assert "wagtail_icarus_smtp.W003" in ids()
    settings.ICARUS_SMTP_DRAIN_SECONDS = 20
    assert "wagtail_icarus_smtp.W003" not in ids()
