"""Settings of the demo site "Dropzone Musterstadt" — for 127.0.0.1, never for production."""

import django

from example_site import demo

BASE_DIR = demo.BASE_DIR
VAR_DIR = demo.VAR_DIR
VAR_DIR.mkdir(exist_ok=True)

SECRET_KEY = "demo-only-dropzone-musterstadt-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "example_site.dropzone",
    "wagtail_icarus_smtp",
    "wagtail.contrib.forms",
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
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_site.urls"
WSGI_APPLICATION = "example_site.wsgi.application"

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
            ],
        },
    },
]

# SQLite under var/ (gitignored). The web server and the task worker write at the same
# time: WAL and a generous busy timeout keep them from tripping over each other.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "demo.sqlite3",
        "OPTIONS": {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "de"
LANGUAGES = [("de", "Deutsch"), ("en", "English")]
WAGTAILADMIN_PERMITTED_LANGUAGES = LANGUAGES
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"

WAGTAIL_SITE_NAME = "Dropzone Musterstadt"
WAGTAILADMIN_BASE_URL = demo.SITE_URL
# Wagtail's own "Passwort vergessen?" on the admin login page (the default; said aloud).
WAGTAIL_PASSWORD_MANAGEMENT_ENABLED = True
WAGTAIL_PASSWORD_RESET_ENABLED = True

# --- E-mail: everything the site sends goes through the mailbox set in the admin. ---
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "wagtail_icarus_smtp.backends.EmailBackend"}}
else:
    EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
DEFAULT_FROM_EMAIL = "buchung@dropzone-musterstadt.de"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The demo's development SMTP server writes its CA here; trust it in addition to the
# system trust store, and allow its port 2525 (STARTTLS) next to the standard ports.
ICARUS_SMTP_CA_FILE = demo.SMTP_CA_FILE
ICARUS_SMTP_PORTS = {587: "starttls", 465: "ssl", demo.SMTP_PORT: "starttls"}
# The demo's dev SMTP server runs on loopback, which the host guard refuses by default.
ICARUS_SMTP_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
# Demo only. For a real site generate your own: Fernet.generate_key() from cryptography.
ICARUS_SMTP_ENCRYPTION_KEYS = ["1yJzFQwLltNx0WBNjDAnbukyAk6wF2MX85i2WmiVrbM="]

# django-q2 with the database as broker: `manage.py qcluster` runs the connection tests.
Q_CLUSTER = {
    "name": "icarus",
    "orm": "default",
    "workers": 1,
    "timeout": 60,
    "retry": 120,
    "max_attempts": 3,
    "catch_up": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "wagtail_icarus_smtp": {"handlers": ["console"], "level": "INFO"},
    },
}
