"""System checks with stable ids (``wagtail_icarus_smtp.E001`` …)."""

import warnings

from django.apps import apps
from django.conf import settings
from django.core import checks

from . import conf

BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"


def _backend_configured():
    mailers = getattr(settings, "MAILERS", None)
    if mailers is not None:
        return any(config.get("BACKEND") == BACKEND for config in mailers.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Django 6.1 deprecates EMAIL_BACKEND; still supported
        return getattr(settings, "EMAIL_BACKEND", "") == BACKEND


@checks.register(checks.Tags.compatibility)
def check_configuration(app_configs=None, **kwargs):
    errors = []
    if not _backend_configured():
        errors.append(
            checks.Warning(
                "Site mail does not go through the SMTP settings from the Wagtail admin.",
                hint=f'Set EMAIL_BACKEND = "{BACKEND}" (or a MAILERS entry with that BACKEND).',
                id="wagtail_icarus_smtp.W001",
            )
        )
    if not apps.is_installed("django_q"):
        errors.append(
            checks.Error(
                "django-q2 is not installed: connection tests cannot run.",
                hint='Add "django_q" to INSTALLED_APPS and run a worker (manage.py qcluster).',
                id="wagtail_icarus_smtp.E001",
            )
        )
    cluster = getattr(settings, "Q_CLUSTER", {})
    timeout, retry = cluster.get("timeout"), cluster.get("retry")
    if timeout is None or retry is None or timeout >= retry:
        errors.append(
            checks.Error(
                "Q_CLUSTER 'timeout' must be set and lower than 'retry'.",
                hint="A task that runs longer than 'retry' is handed to a second worker. "
                'E.g. Q_CLUSTER = {"timeout": 60, "retry": 120, ...}.',
                id="wagtail_icarus_smtp.E002",
            )
        )
    if timeout is not None and conf.get("DRAIN_SECONDS") * 2 > timeout:
        errors.append(
            checks.Warning(
                "ICARUS_SMTP_DRAIN_SECONDS is more than half of Q_CLUSTER 'timeout': a "
                "drain of a big backlog may be killed mid-batch (its last group is sent "
                "twice).",
                hint=f"Set ICARUS_SMTP_DRAIN_SECONDS to at most {timeout // 2}, or raise "
                "Q_CLUSTER['timeout'] (its last batch may take longer than the limit).",
                id="wagtail_icarus_smtp.W003",
            )
        )
    if not cluster.get("max_attempts"):
        errors.append(
            checks.Error(
                "Q_CLUSTER 'max_attempts' is unbounded: a failing task would be retried forever.",
                hint='Set e.g. Q_CLUSTER["max_attempts"] = 3.',
                id="wagtail_icarus_smtp.E003",
            )
        )
    if not conf.get("ENCRYPTION_KEYS"):
        errors.append(
            checks.Warning(
                "The SMTP password is encrypted with a key derived from SECRET_KEY.",
                hint="Set ICARUS_SMTP_ENCRYPTION_KEYS to a list of Fernet keys "
                "(cryptography.fernet.Fernet.generate_key()) so rotating SECRET_KEY "
                "does not make the stored password unreadable.",
                id="wagtail_icarus_smtp.W002",
            )
        )
    for name in conf.unknown_names():
        errors.append(
            checks.Error(
                f"{name} is not a setting of wagtail-icarus-smtp.",
                hint="Known settings: "
                + ", ".join(conf.PREFIX + key for key in sorted(conf.DEFAULTS)),
                id="wagtail_icarus_smtp.E004",
            )
        )
    ports = conf.get("PORTS")
    if not isinstance(ports, dict) or any(mode not in conf.TLS_MODES for mode in ports.values()):
        errors.append(
            checks.Error(
                "ICARUS_SMTP_PORTS must map port numbers to 'starttls' or 'ssl'.",
                hint='E.g. {587: "starttls", 465: "ssl"}. Plaintext SMTP is not supported.',
                id="wagtail_icarus_smtp.E005",
            )
        )
    return errors
