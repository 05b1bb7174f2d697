"""Telling the site owners that the mail server changes, through the server they trust.

Whoever controls the server that sends the site's mail reads every password-reset
link. So before a new connection target (server, port or login) goes live, every
superuser and the previous mailbox get a notice sent through the **previous** live
configuration — the new server cannot swallow it. When there was no live
configuration yet, the notice goes out through the new one right after it went live.
Notices are sent even while sending is switched off: they are about who controls the
mailbox, not site mail.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.views.decorators.debug import sensitive_variables

from .. import audit, signals
from ..exceptions import PasswordUnreadable
from ..models import SmtpSettings
from ..setup import live
from . import delivery, intake, store

logger = logging.getLogger("wagtail_icarus_smtp")


def target(config):
    """``(host, port, login)`` of a settings draft or a live configuration."""
    return (config.host, config.port, config.email)


def recipients(previous=None):
    """Active superusers with an address, and the previous mailbox (no duplicates)."""
    found = get_user_model().objects.filter(is_superuser=True, is_active=True)
    addresses = [address for address in found.values_list("email", flat=True) if address]
    if previous is not None:
        addresses.append(previous.email)
    unique = {}
    for address in addresses:
        unique.setdefault(address.lower(), address)
    return list(unique.values())


def _history_url():
    path = reverse("wagtail_icarus_smtp:history")
    base = getattr(settings, "WAGTAILADMIN_BASE_URL", "") or ""
    return base.rstrip("/") + path


def _describe(config):
    if config is None:
        return gettext("none")
    return gettext("%(login)s via %(host)s, port %(port)s") % {
        "login": config.email,
        "host": config.host,
        "port": config.port,
    }


def message(smtp_settings, previous, user, to):
    """The notice, in the site's language (``LANGUAGE_CODE``)."""
    site = getattr(settings, "WAGTAIL_SITE_NAME", "") or "Wagtail"
    with translation.override(settings.LANGUAGE_CODE):
        values = {
            "site": site,
            "user": user.get_username() if user is not None else gettext("an unknown user"),
            "when": date_format(timezone.localtime(), "DATETIME_FORMAT"),
            "old": _describe(previous),
            "new": _describe(smtp_settings),
            "url": _history_url(),
        }
        subject = gettext("Security notice: the mail server of %(site)s is being changed")
        body = gettext(
            "%(user)s changed the mail server through which %(site)s sends all its "
            "e-mails (%(when)s).\n\n"
            "Before: %(old)s\n"
            "Now: %(new)s\n\n"
            "From now on every e-mail of the site — including links to reset a "
            "password — goes through the new server. If you did not expect this change, "
            "check it at once and switch sending off: %(url)s\n"
        )
        return EmailMessage(subject=subject % values, body=body % values, to=to)


def _envelopes(smtp_settings, previous, user):
    to = recipients(previous)
    if not to:
        return []
    return [intake.envelope_of(message(smtp_settings, previous, user, to))]


@sensitive_variables("sending")
def before_promotion(smtp_settings, previous, user=None):
    """Notify through ``previous`` (the live configuration about to be replaced) when
    the target changes. Returns the ``store.Result``, or ``None`` when nothing to say.

    What the previous server does not take stays in the outbox (deferred): a retry
    then goes through the new configuration, which is better than no notice at all.
    """
    if previous is None or target(previous) == target(smtp_settings):
        return None
    envelopes = _envelopes(smtp_settings, previous, user)
    if not envelopes:
        return None
    try:
        sending = live.sending_for(previous, from_name=smtp_settings.from_name)
    except PasswordUnreadable:
        intake.accept(envelopes, held=False)
        result = store.Result(deferred=len(envelopes))
    else:
        result = delivery.send_now(envelopes, sending)
    _log(smtp_settings, previous, user, result)
    return result


@sensitive_variables("sending")
def after_first_promotion(smtp_settings, user=None):
    """No live configuration existed: the notice goes through the new one, like any
    site mail (held while sending is switched off)."""
    envelopes = _envelopes(smtp_settings, None, user)
    if not envelopes:
        return None
    sending = live.load()
    if sending.mailbox is None:
        intake.accept(envelopes, held=True)
        result = store.Result(held=len(envelopes))
    else:
        result = delivery.send_now(envelopes, sending)
    _log(smtp_settings, smtp_settings, user, result)
    return result


def _log(smtp_settings, via, user, result):
    sent = result.sent > 0
    if not sent:
        logger.warning("The notice about the changed mail server was not sent yet: %s", result)
    audit.log(
        smtp_settings,
        "target_change_notified",
        user=user,
        via=f"{via.host}:{via.port}",
        sent=sent,
    )


def _on_promoting(sender, *, settings, previous, user=None, **kwargs):
    before_promotion(settings, previous, user)


def _on_promoted(sender, *, settings, previous, user=None, **kwargs):
    if previous is None:
        after_first_promotion(settings, user)


def connect():
    """Listen to the setup's promotion (called from ``apps.ready``)."""
    signals.promoting.connect(
        _on_promoting, sender=SmtpSettings, dispatch_uid="icarus.notices.before"
    )
    signals.promoted.connect(_on_promoted, sender=SmtpSettings, dispatch_uid="icarus.notices.after")
