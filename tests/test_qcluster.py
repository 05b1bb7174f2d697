"""A real django-q2 worker process picks up the connection test from the ORM broker."""

import signal
import time

import pytest
from django_q.conf import Conf
from django_q.models import Task

from tests.utils import configure
from wagtail_icarus_smtp.models import SmtpSettings


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
