"""The health check of the live configuration: re-test it without sending a message.

History rows are written only when the result differs from the last one. What else the
periodic run does (alerts, draining, purging) is the outbox's: ``outbox.periodic``.
"""

from django.views.decorators.debug import sensitive_variables

from .. import status
from ..exceptions import PasswordUnreadable
from ..smtp import credentials, failures, oauth, transport


@sensitive_variables("mailbox")
def check(smtp_settings, live_row):
    """Probe ``live_row`` (whether sending is switched on or not); record a change.

    With OAuth the cached token is dropped first: a fresh one proves that the secret
    (or key) and the permissions still work. Returns the ``Failure``, or ``None`` when
    the configuration works.
    """
    mailbox = None
    try:
        mailbox = credentials.mailbox(live_row)
        if mailbox.oauth is not None:
            oauth.forget(mailbox.oauth)
        transport.probe(mailbox)
    except PasswordUnreadable:
        failure = failures.Failure(status.Category.PASSWORD_UNREADABLE)
    except failures.EXCHANGE_ERRORS as error:
        failure = failures.classify(error, secrets=credentials.secrets(mailbox))
    else:
        failure = None
    _record(smtp_settings, live_row.version, failure)
    return failure


def _record(smtp_settings, version, failure):
    """A history row only when the state of the live configuration changed. A
    provider's send limit is no change: the login worked (the outbox pauses)."""
    if failure is not None and failure.category == status.Category.RATE_LIMITED:
        return None
    value = status.FAILED if failure else status.COMPLETE
    category = failure.category if failure else ""
    last = smtp_settings.events.filter(version=version, kind="").first()
    if last is not None and (last.status, last.category) == (value, category):
        return None
    return smtp_settings.events.create(
        status=value,
        category=category,
        reply=failure.reply if failure else "",
        version=version,
    )
