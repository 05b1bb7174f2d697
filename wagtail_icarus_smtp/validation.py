"""The connection test: run the probe for one draft version and record its outcome.

A draft that passes goes live; when it points mail somewhere else, the site owners are
told first, through the configuration that is live until then (``notices``).
"""

from django.views.decorators.debug import sensitive_variables

from . import audit, crypto, failures, live, notices, status, transport
from .exceptions import IcarusSmtpError
from .models import SmtpSettings


@sensitive_variables("password", "mailbox")
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
    password = ""
    try:
        password = crypto.decrypt(smtp_settings._password_encrypted)
        mailbox = transport.Mailbox(
            host=smtp_settings.host,
            port=smtp_settings.port,
            username=smtp_settings.email,
            password=password,
        )
        duration = transport.probe(mailbox)
    except (OSError, IcarusSmtpError) as error:
        failure = failures.classify(error, secrets=[password])
        audit.log(
            smtp_settings, "test_failed", user=user, version=version, category=failure.category
        )
        return smtp_settings.record(
            status.FAILED, user=user, category=failure.category, reply=failure.reply
        )
    previous = smtp_settings.live_config
    notices.before_promotion(smtp_settings, previous, user)
    event = live.promote(settings_pk, version, duration=duration, user=user)
    if event is not None:
        audit.log(smtp_settings, "test_succeeded", user=user, version=version)
        if previous is None:
            notices.after_first_promotion(smtp_settings, user)
    return event
