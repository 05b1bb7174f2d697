"""Signals other code may listen to."""

from django.dispatch import Signal

#: Sent when an alert starts, is still active after ``ICARUS_SMTP_ALERT_REMINDER``
#: seconds (a reminder), or ends — never on every single failure.
#: Arguments (all keyword):
#:   ``kind``: ``"live_not_working"``, ``"deliveries_failing"``, ``"mail_waiting"`` or
#:   ``"dns_changed"`` (a deliverability check that passed fails now; never reminded);
#:   ``active``: ``True`` while the problem lasts, ``False`` when it is over;
#:   ``reminder``: ``True`` when this repeats an alert already announced;
#:   ``message``: a short text without secrets in the site's language (``LANGUAGE_CODE``),
#:   fit for a chat channel;
#:   ``since``: when the problem started (aware ``datetime``).
#: ``sender`` is ``wagtail_icarus_smtp.models.AlertState``.
alert = Signal()

#: Sent after the deliverability check of the live mailbox's domain has stored a result.
#: Arguments (all keyword):
#:   ``report``: the ``DeliverabilityReport`` row just saved;
#:   ``regressed``: names of the checks (``"spf"``, ``"dkim"``, ``"dmarc"``, ``"mx"``)
#:   that passed before and fail now — someone changed the DNS. Empty when none.
#: ``sender`` is ``wagtail_icarus_smtp.models.DeliverabilityReport``. The alerts listen.
deliverability_checked = Signal()
