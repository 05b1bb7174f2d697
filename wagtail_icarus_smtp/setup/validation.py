"""The connection test: run the probe for one draft version and record its outcome.

A draft that passes goes live; when it points mail somewhere else, the site owners are
told first, through the configuration that is live until then (``notices``).

Whatever happens inside the test ends in a recorded outcome: a failure we know gets its
category, anything else (a bug, data smtplib cannot handle) is logged without secrets
and recorded as ``failed`` too, so the status never stays ``running``.
"""

import logging

from django.views.decorators.debug import sensitive_variables

from .. import audit, signals, status
from ..exceptions import IcarusSmtpError
from ..models import SmtpSettings
from ..smtp import credentials, failures, transport
from . import live

logger = logging.getLogger("wagtail_icarus_smtp")


# Every local may hold the password or a server reply that echoes it.
@sensitive_variables()
def validate(settings_pk, version, *, user=None):
    """Test the draft; on success promote it to the live configuration.

    Returns the recorded event, or ``None`` when a newer draft has replaced ``version``
    (its own test will report). The password is only ever passed in memory.
    """
    smtp_settings = SmtpSettings.objects.get(pk=settings_pk)
    if smtp_settings.version != version:
        return None
    if user is None and smtp_settings.current_event is not None:
        user = smtp_settings.current_event.triggered_by
    mailbox = None
    try:
        mailbox = credentials.mailbox(smtp_settings)
        duration = transport.probe(mailbox)
    except Exception as error:  # whatever it was, the test ends: never "running"
        return _failed(smtp_settings, user, _failure(error, credentials.secrets(mailbox)))
    previous = smtp_settings.live_config
    signals.promoting.send(
        sender=SmtpSettings, settings=smtp_settings, previous=previous, user=user
    )
    event = live.promote(settings_pk, version, duration=duration, user=user)
    if event is not None:
        audit.log(smtp_settings, "test_succeeded", user=user, version=version)
        signals.promoted.send(
            sender=SmtpSettings, settings=smtp_settings, previous=previous, user=user
        )
    return event


def _failed(smtp_settings, user, failure):
    audit.log(
        smtp_settings,
        "test_failed",
        user=user,
        version=smtp_settings.version,
        category=failure.category,
    )
    return smtp_settings.record(
        status.FAILED, user=user, category=failure.category, reply=failure.reply
    )


@sensitive_variables()
def _failure(error, secrets):
    """The ``Failure`` for ``error``; one we did not expect (a bug, data smtplib cannot
    handle) is logged too: its type and masked text, no traceback (the locals of its
    frames hold the password). ``classify`` gives it the category ``protocol``."""
    failure = failures.classify(error, secrets=secrets)
    if not isinstance(error, (OSError, IcarusSmtpError)):
        logger.error("The connection test failed unexpectedly: %s", failure.reply)
    return failure
