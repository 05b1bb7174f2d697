"""Security round two (issue 8): scrub, rate limits across processes, the alert
webhook, and the delivery log's export."""

import io
import os
import subprocess
import sys
import time

import pytest
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.db import connection
from wagtail.models import ModelLogEntry

from tests.utils import ROOT, committed, configure
from wagtail_icarus_smtp import ratelimit, tasks
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import OutboxMessage, RateLimitCounter

pytestmark = pytest.mark.django_db


def send(subject, body="x"):
    with committed():
        EmailBackend().send_messages([EmailMessage(subject, body, None, ["kunde@example.com"])])


# -- scrub empties the outbox ------------------------------------------------------------


@pytest.fixture
def production_outbox(server):
    """A copy of production: one sent message, four waiting (held, deferred, queued,
    sending) — one of them a password-reset link for a real customer."""
    configure(server)
    send("Buchung bestätigt")
    configure(server, enabled=None)  # sending off: what follows is held
    for subject in ("Passwort zurücksetzen", "Deferred", "Queued", "Sending"):
        send(subject, body="https://dropzone.example/reset/MQ/secret-token/")
    for status in ("deferred", "queued", "sending"):
        OutboxMessage.objects.filter(subject=status.title()).update(status=status)
    assert OutboxMessage.objects.filter(mime__isnull=False).count() == 5
    server.clear()
    return server


def test_scrub_discards_waiting_mail_so_staging_sends_none_of_it(production_outbox):
    out = io.StringIO()

    call_command("icarus_smtp_scrub", interactive=False, stdout=out)
    configure(production_outbox)  # staging gets its own working mailbox
    tasks.deliver_outbox()

    assert production_outbox.messages == []
    statuses = dict(OutboxMessage.objects.values_list("subject", "status"))
    assert statuses == {
        "Buchung bestätigt": "sent",
        "Passwort zurücksetzen": "failed",
        "Deferred": "failed",
        "Queued": "failed",
        "Sending": "failed",
    }
    assert not OutboxMessage.objects.filter(mime__isnull=False).exists()
    assert "Discarded 4 waiting message(s); deleted 5 stored message bodies." in out.getvalue()
    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.scrubbed")
    assert (entry.data["discarded"], entry.data["bodies_deleted"]) == (4, 5)


def test_scrub_keep_outbox_only_removes_the_credentials(production_outbox):
    call_command("icarus_smtp_scrub", "--keep-outbox", interactive=False, stdout=io.StringIO())

    assert OutboxMessage.objects.filter(status="held").count() == 1
    assert OutboxMessage.objects.filter(mime__isnull=False).count() == 5
    entry = ModelLogEntry.objects.get(action="wagtail_icarus_smtp.scrubbed")
    assert "discarded" not in entry.data


# -- rate limits hold across processes ---------------------------------------------------

#: Another web process: five test e-mails by the same user, each reported.
OTHER_PROCESS = """
import django
django.setup()
from django.contrib.auth import get_user_model
from wagtail_icarus_smtp import ratelimit
user = get_user_model().objects.get(username="smtp-editor")
for _ in range(5):
    try:
        ratelimit.hit("testmail", user)
        print("ok")
    except ratelimit.RateLimited:
        print("limited")
"""


def other_process():
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(ROOT),
        ICARUS_DB_NAME=connection.settings_dict["NAME"],
    )
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_across_two_processes(smtp_editor):
    """Default for test e-mails: 5 per user. Three here, two more in another process,
    then both processes refuse."""
    for _ in range(3):
        ratelimit.hit("testmail", smtp_editor)

    assert other_process() == ["ok", "ok", "limited", "limited", "limited"]
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("testmail", smtp_editor)


def test_an_action_the_site_does_not_list_gets_the_default_limit(smtp_editor, settings):
    """A site that configured only "test" and "testmail" gets no KeyError for "outbox"."""
    settings.ICARUS_SMTP_RATE_LIMITS = {"test": (10, 30, 600), "testmail": (5, 20, 600)}
    for _ in range(20):
        ratelimit.hit("outbox", smtp_editor)

    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("outbox", smtp_editor)


def test_counters_of_past_windows_are_deleted(smtp_editor, settings):
    settings.ICARUS_SMTP_RATE_LIMITS = {"testmail": (5, 20, 1)}
    ratelimit.hit("testmail", smtp_editor)
    time.sleep(1.1)

    ratelimit.hit("testmail", smtp_editor)

    assert RateLimitCounter.objects.count() == 2  # this window's: user and site
