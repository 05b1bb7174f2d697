"""The test e-mail: one message through the configuration being set up, with its SMTP
transcript.

It tests what is on the page: the draft while it differs from the live configuration
(also a failed one, also while sending is switched off), else the live configuration.
Every test e-mail is recorded in the delivery log, marked as a test.

The transcript comes from ``transport.connect(..., transcript=...)``, which masks the
AUTH exchange and keeps only the beginning of a long conversation; every line is masked
once more against the password and its base64 forms before it leaves this module.
"""

import dataclasses
import email.policy
import smtplib
from email.headerregistry import Address

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from .. import conf, outbox, status
from ..exceptions import IcarusSmtpError
from ..models import DeliveryAttempt, OutboxMessage, SmtpSettings
from ..setup import live
from ..smtp import addresses, failures, transport
from . import replies

#: Which configuration a test e-mail used (``Outcome.configuration``).
DRAFT = "draft"
LIVE = "live"


def _reasons():
    return {
        live.DISABLED: _(
            "SMTP mail sending is switched off. Switch it on and save to send a test e-mail."
        ),
        live.NOT_CONFIGURED: _(
            "Fill in all required fields first: the test e-mail uses the settings on this page."
        ),
        live.PASSWORD_UNREADABLE: _("The stored password can no longer be read — enter it again."),
        live.UNSAFE_SENDER: _(
            "The sender name or address is not allowed. Check the fields Name and E-mail."
        ),
    }


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    recipient: str = ""
    category: str = ""
    category_label: str = ""
    explanation: str = ""
    fix: str = ""
    reply: str = ""
    detail: str = ""  # what went wrong when no server answered (``replies.split``)
    transcript: str = ""
    configuration: str = ""
    configuration_label: str = ""

    def as_dict(self):
        return dataclasses.asdict(self)

    @property
    def details(self):
        """Category, explanation and fix in one line (the result box shows it)."""
        return " — ".join(
            part for part in (self.category_label, self.explanation, self.fix) if part
        )


@dataclasses.dataclass(frozen=True)
class Target:
    """The configuration a test e-mail goes through, or why there is none."""

    mailbox: transport.Mailbox | None
    from_name: str = ""
    configuration: str = ""
    reason: str = ""


def _configuration_labels():
    return {
        DRAFT: _(
            "Tested with the settings on this page that are being set up "
            "(not in use for the site's mail yet)."
        ),
        LIVE: _("Tested with the settings in use for the site's mail."),
    }


@sensitive_variables("mailbox")
def target(smtp_settings=None):
    """The draft when it is complete and differs from the live configuration, else
    the live configuration — whether sending is switched on or not.

    ``smtp_settings``: the instance the page has read already (else it is read)."""
    if smtp_settings is None:
        smtp_settings = SmtpSettings.base_queryset().first()
    live_row = smtp_settings.live_config if smtp_settings is not None else None
    if (
        smtp_settings is not None
        and not smtp_settings.missing_fields()
        and (live_row is None or smtp_settings.live_differs)
    ):
        row, configuration = smtp_settings, DRAFT
    elif live_row is not None:
        row, configuration = live_row, LIVE
    else:
        return Target(None, reason=_reasons()[live.NOT_CONFIGURED])
    sending = live.through(smtp_settings, row)
    if sending.mailbox is None:
        return Target(None, reason=_reasons()[sending.reason])
    return Target(sending.mailbox, sending.from_name, configuration)


@sensitive_variables("chosen")
def unavailable_reason(smtp_settings=None):
    """Why no test e-mail can be sent right now (translated), or ``""``."""
    chosen = target(smtp_settings)
    return "" if chosen.mailbox is not None else chosen.reason


def _message(to, sending, user):
    site = getattr(settings, "WAGTAIL_SITE_NAME", "") or "Wagtail"
    sender = Address(
        display_name=sending.from_name,
        addr_spec=addresses.ascii_if_possible(sending.mailbox.username),
    )
    who = user.get_username() if user is not None and user.is_authenticated else ""
    body = _(
        "This test e-mail was sent from the SMTP settings of %(site)s by %(user)s.\n\n"
        "If you can read it, the site can send e-mails through this mailbox."
    ) % {"site": site, "user": who}
    return EmailMessage(
        subject=_("Test e-mail from %(site)s") % {"site": site},
        body=body,
        from_email=str(sender),
        to=[to],
        headers={"Message-ID": make_msgid(domain=sending.mailbox.host)},
    )


def envelope_address(to):
    """``to`` as RCPT TO carries it: an internationalised domain in its ASCII form
    (``müller-sprung.de`` → ``xn--mller-sprung-dlb.de``), as in the message's header.

    Raises ``ValidationError`` for a local part beyond ASCII: that needs SMTPUTF8,
    which the test e-mail does not use.
    """
    local = to.rpartition("@")[0]
    if not local.isascii():
        raise ValidationError(
            _(
                "The part before the @ may only contain letters without accents, digits "
                "and punctuation. Enter another address for the test e-mail."
            ),
            code="non_ascii_local_part",
        )
    try:
        return addresses.ascii_form(to)  # IDNA 2008: ß stays ß (the codec made it ss)
    except UnicodeError:
        raise ValidationError(_("Enter a valid e-mail address."), code="invalid") from None


# Every local may hold the password or a server reply that echoes it.
@sensitive_variables()
def send(to, *, user=None):
    """Send one test message to ``to``; return an ``Outcome`` (never raises for SMTP).

    One deadline (``ICARUS_SMTP_TIMEOUT``) covers the whole conversation.
    """
    sending = target()
    if sending.mailbox is None:
        return Outcome(False, sending.reason)
    try:
        recipient = envelope_address(to)
    except ValidationError as error:
        return Outcome(False, error.messages[0], recipient=to)
    secrets = [sending.mailbox.password]
    message = _message(to, sending, user)
    transcript = []
    used = {
        "configuration": sending.configuration,
        "configuration_label": _configuration_labels()[sending.configuration],
    }
    data = None
    try:
        data = _as_bytes(message)
        client = transport.connect(
            sending.mailbox, transport.Deadline(conf.get("TIMEOUT")), transcript=transcript
        )
        try:
            sender, options = addresses.envelope(client, sending.mailbox.username)
            client.sendmail(sender, [recipient], data, mail_options=options)
        finally:
            transport.quit_quietly(client)
    except (OSError, IcarusSmtpError, ValueError) as error:  # ValueError: unencodable data
        outcome = dataclasses.replace(_failed(error, to, transcript, secrets), **used)
        _log(
            message,
            data,
            to=to,
            mailbox=sending.mailbox,
            ok=False,
            category=outcome.category,
            reply=outcome.reply,
        )
        return outcome
    _log(message, data, to=to, mailbox=sending.mailbox, ok=True)
    return Outcome(
        True,
        _("The test e-mail was sent to %(to)s.") % {"to": to},
        recipient=to,
        transcript=_masked(transcript, secrets),
        **used,
    )


def _as_bytes(message):
    """The message with CRLF line ends, as Django's own SMTP backend sends it."""
    try:
        return message.message(policy=email.policy.SMTP).as_bytes()
    except TypeError:  # Django 5.2: message() takes no policy
        return message.message().as_bytes(linesep="\r\n")


def _failed(error, to, transcript, secrets):
    failure = failures.classify(error, secrets=secrets)
    label, explanation, fix = status.category_help(failure.category)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        label = _("Recipient refused")
        explanation = _("The mail server does not accept the recipient address.")
        fix = _("Check the address and try again.")
    reply, detail = replies.split(failure.reply)
    return Outcome(
        False,
        _("The test e-mail could not be sent to %(to)s.") % {"to": to},
        recipient=to,
        category=failure.category,
        category_label=str(label),
        explanation=str(explanation),
        fix=str(fix),
        reply=reply,
        detail=detail,
        transcript=_masked(transcript, secrets),
    )


@sensitive_variables("secrets")
def _masked(transcript, secrets):
    """The conversation as "C: …" (client) and "S: …" (server) lines, secrets masked."""
    lines = []
    for entry in transcript:
        lines.extend(failures.mask(line, secrets) for line in _readable(entry))
    return "\n".join(lines)


def _readable(entry):
    """A transcript line (``C: …``, ``S: …``) as shown, markers translated."""
    if entry == transport.TRANSCRIPT_CUT:
        return ["… " + _("(transcript shortened)")]
    if entry == transport.CREDENTIALS_MASKED:
        return [entry + " " + _("(credentials masked)")]
    return [entry]


def _log(message, mime, *, to, mailbox, ok, category="", reply=""):
    """Record the test e-mail in the delivery log: one finished row, marked as a test,
    and its one attempt. Born ``sent`` or ``failed``, it is never claimed, released or
    re-sent."""
    now = timezone.now()
    status = OutboxMessage.Status.SENT if ok else OutboxMessage.Status.FAILED
    row = OutboxMessage.objects.create(
        created_at=now,
        next_attempt_at=now,
        status=status,
        is_test=True,
        message_id=str(message.extra_headers.get("Message-ID", ""))[:255],
        subject=str(message.subject)[:255],
        recipients=[to],
        recipient_list=to[:1000],
        recipient_status={to: {"status": status.value, "reply": reply[:500]}},
        mime=mime,
        attempts=1,
        sent_at=now if ok else None,
        sent_via=outbox.via(mailbox.username, mailbox.host, mailbox.port)[:300],
        last_category=category,
        last_reply=reply[:500],
    )
    DeliveryAttempt.objects.create(
        message=row, created_at=now, status=status, category=category, reply=reply[:500]
    )
    return row
