"""The bench's settings: the test settings with SQLite tuned as production sites run it
(write-ahead log, normal sync) — Django's default rollback journal fsyncs every commit.
``ICARUS_TEST_DB=postgres`` switches to PostgreSQL; ``ICARUS_DB_NAME`` names the
database (one per peer).

``BENCH_PEER`` picks what sends: ``ours`` (this package, a django-q2 worker),
``stock`` (Django's SMTP backend, in the request), ``post_office`` or ``mailer``
(django-post_office, django-mailer: the request stores, their worker sends through
Django's SMTP backend). Every peer talks to the bench's server (``BENCH_SMTP_PORT``,
STARTTLS + AUTH) and trusts its CA: ours through ``ICARUS_SMTP_CA_FILE``, Django's
backend through ``SSL_CERT_FILE`` (the system store plus the CA), which the bench sets.
"""

import os

from tests.settings import *  # noqa: F403 (a variant of the test settings)
from tests.settings import DATABASES, INSTALLED_APPS

PEER = os.environ.get("BENCH_PEER", "ours")

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )

# Django's SMTP backend (stock, and the peers' workers) to the bench's server.
EMAIL_HOST = "localhost"
EMAIL_PORT = int(os.environ.get("BENCH_SMTP_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("BENCH_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("BENCH_SMTP_PASSWORD", "")
EMAIL_USE_TLS = True
EMAIL_TIMEOUT = 15

if PEER == "ours":
    EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    ICARUS_SMTP_PORTS = {EMAIL_PORT: "starttls"}
    if os.environ.get("BENCH_CA_FILE"):
        ICARUS_SMTP_CA_FILE = os.environ["BENCH_CA_FILE"]
    # A real worker (qcluster), configured as README tells sites to: requests only
    # queue a task. The ORM broker looks for tasks every 0.2 s (django-q2's default
    # "poll", which README leaves as it is).
    Q_CLUSTER = {
        "name": "icarus-bench",
        "orm": "default",
        "workers": 1,
        "timeout": 60,
        "retry": 120,
        "max_attempts": 3,
        "catch_up": False,
    }
else:
    INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
    ROOT_URLCONF = "bench.urls"
    if PEER == "stock":
        EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    elif PEER == "post_office":
        INSTALLED_APPS.append("post_office")
        EMAIL_BACKEND = "post_office.EmailBackend"
        POST_OFFICE = {
            "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
            "LOCK_FILE_NAME": os.environ.get("BENCH_LOCK_FILE", "icarus-bench-post_office"),
        }
    elif PEER == "mailer":
        INSTALLED_APPS.append("mailer")
        EMAIL_BACKEND = "mailer.backend.DbBackend"
        MAILER_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        MAILER_LOCK_PATH = os.environ.get("BENCH_LOCK_FILE", "icarus-bench-mailer")
        # runmailer looks for mail this often (django-q2's poll above is 0.2 s too).
        MAILER_EMPTY_QUEUE_SLEEP = 0.2
    else:
        raise ValueError(f"BENCH_PEER: unknown peer {PEER!r}")

# The bench prints its own table; what the senders log would only interleave with it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["null"], "level": "WARNING", "propagate": False}
        for name in ("wagtail_icarus_smtp", "django_q", "post_office", "mailer")
    },
}
