"""The email backend: Django's SMTP backend, fed by the live configuration.

Each connection reads the configuration once (one query) — so a change saved in any
process is used by the next connection everywhere — and sends only when sending is
enabled. When it cannot send, it sends nothing, raises nothing, logs a warning and
counts the messages it did not send.
"""

import copy
import logging
from email.headerregistry import Address
from email.utils import parseaddr

from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends import smtp
from django.db.models import F

from . import conf, live, transport
from .models import SmtpSettings

logger = logging.getLogger("wagtail_icarus_smtp")

#: Connection options that belong in the Wagtail admin, not in Django settings.
ADMIN_OPTIONS = ("host", "port", "username", "password", "use_tls", "use_ssl")


class EmailBackend(smtp.EmailBackend):
    def __init__(self, *, fail_silently=False, **kwargs):
        given = sorted(name for name in ADMIN_OPTIONS if kwargs.pop(name, None) is not None)
        if given:
            raise ImproperlyConfigured(
                f"wagtail_icarus_smtp.backends.EmailBackend takes {', '.join(given)} from "
                "the SMTP settings in the Wagtail admin; remove them from the mailer options."
            )
        # Our own option, popped before Django sees the rest (Django 6.1 rejects
        # unknown MAILERS options).
        self.deadline_seconds = kwargs.pop("timeout", None)
        super().__init__(
            host="",
            port=0,
            username="",
            password="",
            use_tls=False,
            use_ssl=False,
            timeout=None,
            ssl_keyfile="",
            ssl_certfile="",
            fail_silently=fail_silently,
            **kwargs,
        )
        self.sending = None

    # -- connection ----------------------------------------------------------------

    def _seconds(self):
        return self.deadline_seconds or conf.get("TIMEOUT")

    def _load(self):
        if self.sending is None:
            self.sending = live.load()
        return self.sending

    def open(self):
        """Connect with the live configuration; ``None`` when sending is not possible."""
        if self.connection:
            return False
        sending = self._load()
        if sending.mailbox is None:
            return None
        try:
            self.connection = transport.connect(
                sending.mailbox, transport.Deadline(self._seconds())
            )
        except OSError:
            self.sending = None
            if not self.fail_silently:
                raise
            return None
        return True

    def close(self):
        try:
            super().close()
        finally:
            self.sending = None

    # -- sending -------------------------------------------------------------------

    def send_messages(self, email_messages):
        if not email_messages:
            return 0
        with self._lock:
            sending = self._load()
            if sending.mailbox is None:
                self._not_sent(email_messages, sending)
                return 0
            return super().send_messages(email_messages)

    def _send(self, email_message):
        self.connection.start_exchange(self._seconds())
        return super()._send(self._from_mailbox(email_message))

    def _from_mailbox(self, email_message):
        """A copy sent From the mailbox; the caller's own sender becomes Reply-To."""
        mailbox = self.sending.mailbox.username
        message = copy.copy(email_message)
        headers = {k: v for k, v in message.extra_headers.items() if k.lower() != "from"}
        original = next(
            (v for k, v in message.extra_headers.items() if k.lower() == "from"),
            message.from_email,
        )
        message.extra_headers = headers
        message.from_email = str(Address(display_name=self.sending.from_name, addr_spec=mailbox))
        foreign = original and parseaddr(str(original))[1].lower() != mailbox.lower()
        if foreign and not message.reply_to:
            message.reply_to = [str(original)]
        return message

    def _not_sent(self, email_messages, sending):
        count = len(email_messages)
        logger.warning(
            "SMTP sending is not possible (%s): %d message(s) not sent.", sending.reason, count
        )
        if sending.settings_pk is not None:
            SmtpSettings.objects.filter(pk=sending.settings_pk).update(
                unsent_count=F("unsent_count") + count
            )
        self.sending = None
