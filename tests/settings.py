"""Settings for the test suite. ICARUS_TEST_DB=postgres switches to PostgreSQL."""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "test-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Europe/Berlin"
LANGUAGE_CODE = "en"
LANGUAGES = [("de", "Deutsch"), ("en", "English")]

INSTALLED_APPS = [
    "wagtail_icarus_smtp",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_q",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
            ]
        },
    }
]

if os.environ.get("ICARUS_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("ICARUS_DB_NAME", "test"),
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            # Parallel runs on one machine (worktrees) each set their own name.
            "TEST": {"NAME": os.environ.get("ICARUS_TEST_PG_NAME", "test_wagtail_icarus_smtp")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # A file (not :memory:) so a real qcluster process can share it; one per
            # test run so parallel runs on one machine do not collide.
            "NAME": os.environ.get("ICARUS_DB_NAME", str(BASE_DIR / "test.sqlite3")),
            # Writers queue up instead of failing with "database is locked" when two
            # saves race (SQLite cannot upgrade a read transaction to a write one).
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            "TEST": {
                "NAME": os.environ.setdefault(
                    "ICARUS_TEST_SQLITE",
                    str(Path(tempfile.gettempdir()) / f"icarus-smtp-test-{os.getpid()}.sqlite3"),
                )
            },
        }
    }

STATIC_URL = "/static/"
STATIC_ROOT = str(BASE_DIR / "static-collected")
WAGTAIL_SITE_NAME = "Test site"
WAGTAILADMIN_BASE_URL = "http://testserver"

EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
DEFAULT_FROM_EMAIL = "buchung@dropzone.example"

Q_CLUSTER = {
    "name": "icarus-tests",
    "orm": "default",
    # Tasks run inline, except in the real qcluster process that one test starts.
    "sync": os.environ.get("ICARUS_TEST_QCLUSTER") != "1",
    "poll": 0.2,
    "timeout": 30,
    "retry": 60,
    "max_attempts": 1,
    "catch_up": False,
}

# The qcluster test passes its local server's port and CA to the worker process.
if os.environ.get("ICARUS_TEST_SMTP_PORT"):
    ICARUS_SMTP_PORTS = {int(os.environ["ICARUS_TEST_SMTP_PORT"]): "starttls"}
    ICARUS_SMTP_CA_FILE = os.environ["ICARUS_TEST_CA_FILE"]

# Outbox tests with worker processes shorten the lease (a killed worker's rows return).
if os.environ.get("ICARUS_TEST_OUTBOX_LEASE"):
    ICARUS_SMTP_OUTBOX_LEASE = int(os.environ["ICARUS_TEST_OUTBOX_LEASE"])
    ICARUS_SMTP_OUTBOX_BATCH_SIZE = int(os.environ.get("ICARUS_TEST_OUTBOX_BATCH", "100"))

# The local test servers listen on loopback, which the host guard refuses by default.
ICARUS_SMTP_ALLOWED_HOSTS = ["localhost", "127.0.0.0/8", "::1"]
ICARUS_SMTP_ENCRYPTION_KEYS = ["qW2ccJ6ELHV3Yhk5Uq5W1Q5H0h8v2Jb2rP4a4Ck0xFw="]
ICARUS_SMTP_TIMEOUT = 5
# A drain stays within half the task timeout above (check W003).
ICARUS_SMTP_DRAIN_SECONDS = 15
# No test asks a public DNS server: conftest starts a local one for the whole run (and
# passes it to worker processes as ICARUS_TEST_DNS); tests start their own zones.
ICARUS_SMTP_DNS_NAMESERVERS = [os.environ.get("ICARUS_TEST_DNS", "127.0.0.1:9")]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"wagtail_icarus_smtp": {"handlers": ["console"], "level": "INFO"}},
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
