"""Helpers that drive the product the way an editor does: through the settings form."""

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import TestCase
from django.urls import reverse
from wagtail.contrib.settings.views import get_setting_edit_handler
from wagtail.users.models import UserProfile

from tests.conftest import MAILBOX, PASSWORD
from wagtail_icarus_smtp import outbox
from wagtail_icarus_smtp.models import SmtpSettings

ROOT = Path(__file__).resolve().parent.parent
#: What Wagtail's admin JavaScript sends: denials become 403 instead of a redirect.
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
#: Our backend's dotted path (Django's test setup swaps in the locmem backend).
BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"


def edit_url():
    """The settings page of the (only) SMTP settings row."""
    pk = SmtpSettings.load().pk
    return reverse("wagtailsettings:edit", args=["wagtail_icarus_smtp", "smtpsettings", pk])


def german(user):
    """``user`` with German as the admin language (Wagtail's profile setting)."""
    profile = UserProfile.get_for_user(user)
    profile.preferred_language = "de"
    profile.save()
    return user


def worker_env(server, ca, **extra):
    """Environment for a real worker process (qcluster) sharing the test database and
    trusting the local test server."""
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=str(ROOT),
        ICARUS_TEST_QCLUSTER="1",
        ICARUS_DB_NAME=connection.settings_dict["NAME"],
        ICARUS_TEST_SMTP_PORT=str(server.port),
        ICARUS_TEST_CA_FILE=ca.ca_file,
        **extra,
    )


def form_class():
    """The form Wagtail builds for the settings page (panels + our base form)."""
    return get_setting_edit_handler(SmtpSettings).get_form_class()


def form_data(**overrides):
    data = {
        "from_name": "Dropzone Musterstadt",
        "email": MAILBOX,
        "password": PASSWORD,
        "host": "localhost",
        "port": "587",
        "enabled": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def site_editor():
    """The editor who submits when a test names none: not a superuser, holds only the
    setting's permissions, password ``pw`` (as every user fixture)."""
    user, created = get_user_model().objects.get_or_create(
        username="site-editor", defaults={"password": make_password("pw")}
    )
    if created:
        group, _ = Group.objects.get_or_create(name="Site editors")
        group.permissions.add(
            Permission.objects.get(codename="access_admin"),
            Permission.objects.get(codename="change_smtpsettings"),
        )
        user.groups.add(group)
    return user


def submit(user=None, *, run_tasks=True, **overrides):
    """Submit the settings form as ``user`` (default: ``site_editor()``); run on-commit
    callbacks (the task, sync in tests).

    The editor confirms a changed server, port or e-mail with their admin password
    (``pw`` unless ``confirm_password`` says otherwise). With ``run_tasks=False`` the
    queued connection test is dropped, as if no worker ran.

    Returns the bound form (check ``form.errors``) — the settings are saved when valid.
    """
    user = user or site_editor()
    overrides.setdefault("confirm_password", "pw")
    smtp_settings = SmtpSettings.load()
    form = form_class()(data=form_data(**overrides), instance=smtp_settings, for_user=user)
    with TestCase.captureOnCommitCallbacks(execute=run_tasks):
        if form.is_valid():
            form.save()
    return form


def configure(server, user=None, **overrides):
    """Save working settings for ``server`` and return the reloaded settings."""
    form = submit(user=user, port=str(server.port), **overrides)
    assert not form.errors, form.errors
    return SmtpSettings.load()


def committed():
    """Run the on-commit callbacks at the end of the block, as a real commit would:
    the backend delivers what it accepted only after the caller's transaction commits."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def numbered_envelopes(count, prefix="m", sender="shop@dropzone.example"):
    """``count`` small messages ``<{prefix}{i}@test>`` to ``k{i}@example.com``, ready for
    ``outbox.accept``."""
    return [
        outbox.Envelope(
            message_id=f"<{prefix}{i}@test>",
            subject=f"{prefix.upper()}{i}",
            sender=sender,
            has_reply_to=False,
            recipients=[f"k{i}@example.com"],
            mime=(
                f"Subject: {prefix.upper()}{i}\r\nMessage-ID: <{prefix}{i}@test>\r\n"
                f"\r\nText {i}\r\n"
            ).encode(),
        )
        for i in range(count)
    ]
