"""Signals other code may listen to, and the ones that carry a step of the data path
upwards (a lower room announces, a higher one acts; see docs/architecture.md)."""

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

#: Sent after a commit that may have made sending possible (a configuration went live,
#: sending was switched on): the outbox releases held mail. ``sender``: ``SmtpSettings``.
sending_possible = Signal()

#: Sent when a tested draft is about to go live (``promoting``) and after it went live
#: (``promoted``). Arguments: ``settings`` (the draft), ``previous`` (the live
#: configuration before, or ``None``), ``user``. The outbox's notices listen: the owners
#: hear of a new mail server through the previous one. ``sender``: ``SmtpSettings``.
promoting = Signal()
promoted = Signal()

#: Sent after the deliverability check of the live mailbox's domain has stored a result.
#: Arguments (all keyword):
#:   ``report``: the ``DeliverabilityReport`` row just saved;
#:   ``regressed``: names of the checks (``"spf"``, ``"dkim"``, ``"dmarc"``, ``"mx"``)
#:   that passed before and fail now — someone changed the DNS. Empty when none.
#: ``sender`` is ``wagtail_icarus_smtp.models.DeliverabilityReport``. ``outbox/alerts``
#: listens (wired in ``apps.ready``).
deliverability_checked = Signal()
