"""Security round two (issue 8): scrub, rate limits across processes, the alert
webhook, and the delivery log's export."""

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils.module_loading import import_string
from django_q.conf import Conf
from django_q.models import OrmQ
from wagtail.models import ModelLogEntry

from tests.utils import ROOT, committed, configure
from wagtail_icarus_smtp import queue, tasks
from wagtail_icarus_smtp.admin import ratelimit
from wagtail_icarus_smtp.backends import EmailBackend
from wagtail_icarus_smtp.models import OutboxMessage, RateLimitCounter
from wagtail_icarus_smtp.outbox import alerts

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
from wagtail_icarus_smtp.admin import ratelimit
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


# -- the alert webhook -------------------------------------------------------------------

HOSTILE = "535 5.7.8 <!channel> <http://evil|click> @here @Everyone & more"


class Hook(ThreadingHTTPServer):
    """A webhook on 127.0.0.1 that records what is posted (``received``); with
    ``drip = True`` it answers one byte per second; with a TLS context it is HTTPS."""

    daemon_threads = True

    def __init__(self, tls_context=None):
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.received = []
        self.drip = False
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server_port}/hook"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class _HookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.server.received.append(json.loads(self.rfile.read(length)))
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        try:
            for chunk in [bytes([byte]) for byte in reply] if self.server.drip else [reply]:
                self.wfile.write(chunk)
                time.sleep(1 if self.server.drip else 0)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args):
        pass


@pytest.fixture
def hook(settings):
    server = Hook()
    settings.ICARUS_SMTP_ALERT_WEBHOOK_URL = server.url
    yield server
    server.stop()


@pytest.fixture
def tls_hook(settings, ca):
    server = Hook(tls_context=ca.server_context())
    settings.ICARUS_SMTP_ALERT_WEBHOOK_URL = server.url
    yield server
    server.stop()


def test_a_hostile_server_reply_arrives_escaped_in_the_chat(server, hook):
    configure(server)
    server.auth_reply = HOSTILE  # the provider's server now answers this to our login

    send("Buchung")  # the live configuration stops working: an alert with the reply

    [alert] = [a for a in hook.received if a["kind"] == alerts.LIVE_NOT_WORKING]
    text = alert["text"]
    assert (
        "&lt;!channel&gt; &lt;http://evil|click&gt; @\u200dhere @\u200dEveryone &amp; more" in text
    )
    for raw in ("<!channel>", "<http", "|click>", "@here", "@Everyone", "& more"):
        assert raw not in text


def test_a_dripping_webhook_is_given_up_within_the_deadline(hook, monkeypatch, caplog):
    monkeypatch.setattr(alerts, "WEBHOOK_TIMEOUT", 2)
    hook.drip = True
    start = time.monotonic()

    result = tasks.post_alert_webhook("mail_waiting", True, False, "m", None)

    assert 1.5 < time.monotonic() - start < 3
    assert result == {"posted": False}
    assert hook.received[0]["text"] == "m"  # it was posted; the reply never completed
    assert "Alert webhook failed" in caplog.text


def test_a_public_request_only_queues_the_webhook(
    server, hook, owner, client, monkeypatch, settings
):
    """A password reset (anonymous) whose mail fails: the request raises the alert but
    the POST is a task for the worker, with plain values and without the URL."""
    settings.ICARUS_SMTP_SEND_IN_REQUEST = True  # the opt-in: sending in the request
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"  # the runner swaps it
    configure(server)
    server.stop()
    monkeypatch.setattr(Conf, "SYNC", False)  # enqueue into the ORM broker, do not run inline

    with committed():
        response = client.post("/admin/password_reset/", {"email": owner.email})

    assert response.status_code == 302
    assert hook.received == []
    [queued] = [q.task for q in OrmQ.objects.all() if q.task["func"] == queue.ALERT_WEBHOOK]
    assert queued["args"][0] == alerts.LIVE_NOT_WORKING
    assert json.loads(json.dumps(queued["args"])) == list(queued["args"])
    assert "127.0.0.1:" not in json.dumps(queued["args"])  # the URL is read by the worker

    import_string(queued["func"])(*queued["args"], **queued["kwargs"])  # as the worker does

    assert [a["kind"] for a in hook.received] == [alerts.LIVE_NOT_WORKING]


def test_the_webhook_over_https_verifies_the_certificate(tls_hook, ca, settings, caplog):
    untrusted = tasks.post_alert_webhook("mail_waiting", True, False, "untrusted", None)
    settings.ICARUS_SMTP_CA_FILE = ca.ca_file  # trusted besides the system store
    trusted = tasks.post_alert_webhook("mail_waiting", True, False, "trusted", None)

    assert (untrusted, trusted) == ({"posted": False}, {"posted": True})
    assert [a["text"] for a in tls_hook.received] == ["trusted"]
    assert "Alert webhook failed: URLError" in caplog.text


# -- the delivery log's export -----------------------------------------------------------

HYPERLINK = '=HYPERLINK("http://evil","x")'


@pytest.fixture
def hostile_row():
    return OutboxMessage.objects.create(
        status="failed",
        message_id="<m1@test>",
        subject=HYPERLINK,
        recipients=["+1@example.com"],
        recipient_list="+1@example.com",
        last_reply="@SUM(1)+cmd|' /C calc'!A0",
    )


def export(client, user, export_format):
    client.force_login(user)
    response = client.get(reverse("wagtail_icarus_smtp_outbox:index"), {"export": export_format})
    assert response.status_code == 200
    return response


def test_the_csv_export_neutralises_formulas(hostile_row, client, smtp_editor):
    response = export(client, smtp_editor, "csv")

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    [row] = rows
    assert row["Subject"] == "'" + HYPERLINK
    assert row["Server reply"] == "'@SUM(1)+cmd|' /C calc'!A0"
    assert row["Recipients"] == "'+1@example.com"
    assert row["Message-ID"] == "<m1@test>"  # harmless cells stay as they are


def test_the_xlsx_export_neutralises_formulas(hostile_row, client, smtp_editor):
    from openpyxl import load_workbook

    response = export(client, smtp_editor, "xlsx")

    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    headings, row = ([cell.value for cell in line] for line in sheet.iter_rows())
    cells = dict(zip(headings, row, strict=True))
    assert cells["Subject"] == "'" + HYPERLINK
    assert cells["Server reply"].startswith("'@SUM(1)")
