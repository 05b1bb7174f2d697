"""Direct sending: Django's stock SMTP backend vs ours, same local TLS server.

    make bench            (or: python bench/bench_send.py [--messages 200] [--batch 1000])

Both backends trust the same certificates (the system store plus the bench's own CA),
talk STARTTLS + AUTH to the same aiosmtpd server on 127.0.0.1, and are timed in the
same process, interleaved, median of three rounds. Printed: ms per message and the
ratio ours/stock (lower is better) for
  1. send_mail() in a loop — a new connection per message (what sites do);
  2. 1,000 messages over one connection (send_messages);
and the outbox's draining throughput (messages per second) with one and two worker
processes, from 1,000 held messages. SQLite (WAL) by default; ``--postgres`` uses the
local PostgreSQL, where several workers really drain in parallel.
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


BENCH_POSTGRES_DB = "icarus_smtp_bench"


def setup_django(tmp, ca_file, port, postgres=False):
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    if postgres:
        os.environ["ICARUS_TEST_DB"] = "postgres"
        os.environ["ICARUS_DB_NAME"] = BENCH_POSTGRES_DB
        fresh_postgres_database(BENCH_POSTGRES_DB)
    else:
        os.environ["ICARUS_DB_NAME"] = str(Path(tmp) / "bench.sqlite3")
    import django
    from django.conf import settings

    django.setup()
    settings.ICARUS_SMTP_CA_FILE = ca_file
    settings.ICARUS_SMTP_PORTS = {port: "starttls"}
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fresh_postgres_database(name):
    """An empty database for the bench on the local PostgreSQL (dropped first)."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def configure_mailbox(port, user, password):
    from wagtail_icarus_smtp.models import SmtpLiveConfiguration, SmtpSettings
    from wagtail_icarus_smtp.smtp import crypto

    smtp_settings = SmtpSettings.load()
    ciphertext = crypto.encrypt(password)
    SmtpSettings.objects.filter(pk=smtp_settings.pk).update(
        email=user, _password_encrypted=ciphertext, host="localhost", port=port, enabled=True
    )
    SmtpLiveConfiguration.objects.create(
        settings=smtp_settings,
        email=user,
        _password_encrypted=ciphertext,
        host="localhost",
        port=port,
        version=0,
    )


def messages(count):
    from django.core.mail import EmailMessage

    return [
        EmailMessage(f"Buchung {i}", "Danke für Ihre Buchung!", None, [f"k{i}@example.com"])
        for i in range(count)
    ]


@contextlib.contextmanager
def smtp_server(user, password):
    """Start ``bench/smtp_server.py`` in its own process; yield (port, CA file)."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("smtp_server.py")), user, password],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = json.loads(process.stdout.readline())
        yield started["port"], started["ca_file"]
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def per_message_loop(make_backend, count):
    started = time.perf_counter()
    for message in messages(count):
        sent = make_backend().send_messages([message])
        assert sent == 1, sent
    return (time.perf_counter() - started) / count * 1000


def one_connection(make_backend, count):
    batch = messages(count)
    backend = make_backend()
    started = time.perf_counter()
    with backend:
        sent = backend.send_messages(batch)
    assert sent == count, sent
    return (time.perf_counter() - started) / count * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="row 1: messages")
    parser.add_argument("--batch", type=int, default=1000, help="row 2: batch size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"use the local PostgreSQL (database {BENCH_POSTGRES_DB}) instead of SQLite",
    )
    args = parser.parse_args()

    user, password = "system@dropzone.example", "bench-passwort"
    with tempfile.TemporaryDirectory() as tmp, smtp_server(user, password) as (port, ca_file):
        bundle = Path(tmp) / "bundle.pem"
        system = SYSTEM_BUNDLE.read_bytes() if SYSTEM_BUNDLE.exists() else b""
        bundle.write_bytes(system + b"\n" + Path(ca_file).read_bytes())
        # Django's stock backend uses ssl.create_default_context(): point the default
        # verify paths at the system store plus our CA, so both trust the same certs.
        os.environ["SSL_CERT_FILE"] = str(bundle)
        setup_django(tmp, ca_file, port, postgres=args.postgres)
        configure_mailbox(port, user, password)
        run_rows(args, port, user, password)
        drain_rows(args, port, ca_file)


def hold(count):
    """Accept ``count`` messages while sending is off: they wait in the outbox."""
    from django.core.mail import EmailMessage

    from wagtail_icarus_smtp.backends import EmailBackend
    from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings

    OutboxMessage.objects.all().delete()
    SmtpSettings.objects.update(enabled=False)
    EmailBackend().send_messages(
        [EmailMessage(f"M{i}", "x", None, [f"k{i}@example.com"]) for i in range(count)]
    )
    SmtpSettings.objects.update(enabled=True)
    OutboxMessage.objects.update(status="queued")


def drain_with(workers, port, ca_file):
    env = dict(os.environ, BENCH_PORT=str(port), BENCH_CA_FILE=ca_file)
    script = str(Path(__file__).with_name("drain_worker.py"))
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, script], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    sent = sum(int(process.communicate(timeout=600)[0].strip() or 0) for process in processes)
    return sent, time.perf_counter() - started


def drain_rows(args, port, ca_file):
    """Outbox throughput: one worker process, then two, each from the same held rows."""
    from django.db import connection

    print()
    print("{:<40} {:>13} {:>12}".format("draining the outbox", "messages/s", "vs 1 worker"))
    baseline = None
    for workers in (1, 2):
        hold(args.batch)
        connection.close()  # the workers open their own
        sent, seconds = drain_with(workers, port, ca_file)
        assert sent == args.batch, (sent, args.batch)
        rate = sent / seconds
        baseline = baseline or rate
        label = f"{args.batch} held messages, {workers} worker(s)"
        print(f"{label:<40} {rate:>13.0f} {rate / baseline:>11.2f}x")


def run_rows(args, port, user, password):
    """Time both backends, interleaved, and print one row per way of sending."""
    from django.core.mail.backends.smtp import EmailBackend as StockBackend

    from wagtail_icarus_smtp.backends import EmailBackend as OurBackend

    def stock():
        return StockBackend(
            host="localhost",
            port=port,
            username=user,
            password=password,
            use_tls=True,
            timeout=15,
        )

    rows = [
        ("send_mail() loop, new connection each", per_message_loop, args.messages),
        (f"{args.batch} messages, one connection", one_connection, args.batch),
    ]
    header = ("way of sending", "stock ms/msg", "ours ms/msg", "ours/stock")
    print("{:<40} {:>13} {:>12} {:>11}".format(*header))
    for label, run, count in rows:
        run(stock, min(count, 20))  # warm up both
        run(OurBackend, min(count, 20))
        stock_runs, our_runs = [], []
        for _ in range(args.rounds):  # interleaved, so load changes hit both alike
            stock_runs.append(run(stock, count))
            our_runs.append(run(OurBackend, count))
        stock_ms, ours_ms = statistics.median(stock_runs), statistics.median(our_runs)
        ratio = ours_ms / stock_ms
        print(f"{label:<40} {stock_ms:>13.2f} {ours_ms:>12.2f} {ratio:>10.2f}x")


if __name__ == "__main__":
    main()
