"""The email backend: accepts messages into the outbox and wakes the worker.

Django builds each message (MIME, Message-ID; addresses with its SMTP backend's own
checks); the backend stores it as an ``OutboxMessage`` row in the caller's transaction
(one query for the configuration, one for the rows, both compiled once per process)
and returns how many it accepted. After the commit it only wakes the worker, which
delivers them; without a live configuration, or with sending switched off, they are
held. A rolled-back transaction sends nothing. ``ICARUS_SMTP_SEND_IN_REQUEST`` makes
the request deliver its rows itself after the commit, over one connection. See
``outbox`` for claiming, retries and backoff."""

import email.policy
import logging
import re
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends import smtp
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import sanitize_address
from django.db import transaction

from . import conf, outbox
from .outbox import alerts
from .setup import live

logger = logging.getLogger("wagtail_icarus_smtp")

#: Django 6.0+'s address check of its SMTP backend (IDNA domains, no CR/LF, one
#: mailbox), used as is: it needs nothing of the instance. Creating Django's SMTP
#: backend itself is deprecated in 6.1, and ours opens no connection of its own.
_prep_address = getattr(smtp.EmailBackend, "prep_address", None)

#: A plain ASCII ``local@domain`` (dot-atom local part, domain labels of letters,
#: digits and hyphens): Django's address check returns it unchanged, so it is skipped
#: for such an address (it parses every address with the email package: ~60 µs).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)

#: Connection options that belong in the Wagtail admin, not in Django settings.
ADMIN_OPTIONS = ("host", "port", "username", "password", "use_tls", "use_ssl")


class EmailBackend(BaseEmailBackend):
    def __init__(self, fail_silently=False, **kwargs):
        given = sorted(name for name in ADMIN_OPTIONS if kwargs.pop(name, None) is not None)
        if given:
            raise ImproperlyConfigured(
                f"wagtail_icarus_smtp.backends.EmailBackend takes {', '.join(given)} from "
                "the SMTP settings in the Wagtail admin; remove them from the mailer options."
            )
        # Our own option, popped before Django sees the rest (Django 6.1 rejects
        # unknown MAILERS options; ``alias`` goes on to the base class).
        self.deadline_seconds = kwargs.pop("timeout", None)
        super().__init__(**kwargs)
        self.fail_silently = fail_silently  # accepting is a database write: nothing to hide
        self.sending = None
        self._lock = threading.RLock()

    # -- connection ----------------------------------------------------------------
    # The SMTP connections belong to ``outbox.deliver``; an open backend only keeps
    # the configuration it read, so a change saved elsewhere applies to the next one.

    def open(self):
        if self.sending is not None:
            return False
        self.sending = live.load()
        return True

    def close(self):
        self.sending = None

    # -- accepting -----------------------------------------------------------------

    def send_messages(self, email_messages):
        """Store the messages; return how many were accepted (sent, queued or held)."""
        envelopes = [self.envelope(message) for message in email_messages if message.recipients()]
        if not envelopes:
            return 0
        in_request = conf.get("SEND_IN_REQUEST")
        bulk = len(envelopes) > 1  # a newsletter goes after bookings and resets
        with self._lock:
            sending = self.sending or live.load()
        held = sending.mailbox is None
        if in_request and not held:  # opt-in: this request waits for the mail server
            rows = outbox.accept(envelopes, held=False, claimed=True, bulk=bulk)
            transaction.on_commit(
                lambda: outbox.deliver_accepted(rows, sending, self.deadline_seconds)
            )
            return len(rows)
        count = outbox.hand_over(envelopes, held=held, bulk=bulk)
        if held:
            logger.warning(
                "SMTP sending is not possible (%s): %d message(s) held.", sending.reason, count
            )
        else:  # the worker sends; this request only wakes it (coalesced)
            transaction.on_commit(alerts.handed_over)
        return count

    def recipient(self, address, email_message):
        """An envelope recipient as Django's SMTP backend checks and writes it."""
        if isinstance(address, str) and _PLAIN_ADDRESS.fullmatch(address):
            return address
        if _prep_address is not None:  # Django 6.0+
            return _prep_address(self, address)
        return sanitize_address(address, email_message.encoding or settings.DEFAULT_CHARSET)

    def envelope(self, email_message):
        """Django builds the message: MIME bytes, Message-ID and envelope recipients."""
        recipients = [self.recipient(addr, email_message) for addr in email_message.recipients()]
        if _prep_address is not None:  # Django 6.0+
            message = email_message.message(policy=email.policy.SMTP)
            data = message.as_bytes()
        else:
            message = email_message.message()
            data = message.as_bytes(linesep="\r\n")
        headers = {key.lower(): value for key, value in email_message.extra_headers.items()}
        return outbox.Envelope(
            message_id=str(message["Message-ID"]),
            subject=str(email_message.subject or ""),
            sender=str(headers.get("from", email_message.from_email) or ""),
            has_reply_to=bool(email_message.reply_to or headers.get("reply-to")),
            recipients=recipients,
            mime=data,
        )
