"""A real django-q2 worker process picks up the connection test from the ORM broker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django_q.conf import Conf
from django_q.models import Task

from tests.utils import configure
from wagtail_icarus_smtp.models import SmtpSettings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def qcluster(server, ca):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(ROOT),
        ICARUS_TEST_QCLUSTER="1",
        ICARUS_DB_NAME=connection.settings_dict["NAME"],
        ICARUS_TEST_SMTP_PORT=str(server.port),
        ICARUS_TEST_CA_FILE=ca.ca_file,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.qcluster
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_connection_test(server, qcluster, monkeypatch, editor):
    monkeypatch.setattr(Conf, "SYNC", False)  # enqueue into the ORM broker, do not run inline

    configure(server, user=editor)

    deadline = time.monotonic() + 90
    while SmtpSettings.load().status == "running" and time.monotonic() < deadline:
        assert qcluster.poll() is None, qcluster.stdout.read()
        time.sleep(0.3)

    smtp_settings = SmtpSettings.load()
    if smtp_settings.status != "complete":
        qcluster.send_signal(signal.SIGTERM)
        output = qcluster.communicate(timeout=30)[0]
        pytest.fail(f"status {smtp_settings.status}; worker output:\n{output}")
    assert smtp_settings.current_event.triggered_by == editor
    assert smtp_settings.live_config.version == smtp_settings.version
    # The worker's monitor saves the task row just after the task itself finished.
    tasks = Task.objects.filter(func="wagtail_icarus_smtp.tasks.validate_settings")
    while not tasks.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    [task] = tasks
    assert task.success
    assert list(task.args) == [smtp_settings.pk, smtp_settings.version]
    qcluster.send_signal(signal.SIGTERM)
    output = qcluster.communicate(timeout=30)[0]
    assert "Processed 'wagtail_icarus_smtp.tasks.validate_settings'" in output
