"""`icarus_smtp_devserver`, run as a process, serves the plugin end to end."""

import os
import signal
import subprocess
import sys
import time
from email import message_from_bytes

import pytest
from django.core import mail

from tests import smtpservers
from tests.utils import ROOT, committed, submit
from wagtail_icarus_smtp.models import SmtpSettings

USER, PASSWORD = "system@dropzone-musterstadt.de", "demo-passwort"


@pytest.fixture
def devserver(tmp_path):
    port = smtpservers.free_port()
    ca_file, maildir = tmp_path / "ca.pem", tmp_path / "mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "icarus_smtp_devserver",
            f"--port={port}",
            f"--ca-file={ca_file}",
            f"--maildir={maildir}",
            f"--user={USER}",
            f"--password={PASSWORD}",
        ],
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ca_file.exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    time.sleep(0.5)
    yield port, ca_file, maildir, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


@pytest.mark.django_db
def test_the_plugin_tests_and_sends_through_the_devserver(devserver, settings):
    port, ca_file, maildir, process = devserver
    settings.ICARUS_SMTP_CA_FILE = str(ca_file)
    settings.ICARUS_SMTP_PORTS = {port: "starttls"}
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"

    form = submit(email=USER, password=PASSWORD, host="localhost", port=str(port))
    assert not form.errors
    assert SmtpSettings.load().status == "complete"

    with committed():
        assert mail.send_mail("Buchung", "Danke!", None, ["kunde@example.com"]) == 1

    deadline = time.monotonic() + 10
    while not list(maildir.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.1)
    [eml] = list(maildir.glob("*.eml"))
    message = message_from_bytes(eml.read_bytes())
    assert message["Subject"] == "Buchung"
    assert USER in message["From"]

    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert "kunde@example.com" in output
    assert PASSWORD in output  # the banner shows the demo values to enter
