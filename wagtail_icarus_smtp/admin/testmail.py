"""The test e-mail: one message through the live configuration, with its SMTP transcript.

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
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from .. import conf, status
from ..exceptions import IcarusSmtpError
from ..models import SmtpLiveConfiguration
from ..setup import live
from ..smtp import failures, transport


def _reasons():
    return {
        live.DISABLED: _(
            "SMTP mail sending is switched off. Switch it on and save to send a test e-mail."
        ),
        live.NOT_CONFIGURED: _(
            "There are no working settings yet. The test e-mail is available once the "
            "status shows “Setup complete”."
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
    transcript: str = ""

    def as_dict(self):
        return dataclasses.asdict(self)


@sensitive_variables("sending")
def unavailable_reason(smtp_settings=None):
    """Why no test e-mail can be sent right now (translated), or ``""``.

    ``smtp_settings``: the instance the page has read already (else it is read)."""
    sending = live.load() if smtp_settings is None else live.sending_of(smtp_settings)
    if sending.mailbox is not None:
        return ""
    return _reason(sending, smtp_settings)


def _reason(sending, smtp_settings=None):
    reason = sending.reason
    if smtp_settings is not None:
        has_live = smtp_settings.live_config is not None
    else:
        has_live = SmtpLiveConfiguration.objects.exists()
    if reason == live.DISABLED and not has_live:
        reason = live.NOT_CONFIGURED  # first things first: the setup, then the switch
    return _reasons().get(reason, _("Sending is not possible right now."))


def _message(to, sending, user):
    site = getattr(settings, "WAGTAIL_SITE_NAME", "") or "Wagtail"
    sender = Address(display_name=sending.from_name, addr_spec=sending.mailbox.username)
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
    )


def envelope_address(to):
    """``to`` as RCPT TO carries it: an internationalised domain in its ASCII form
    (``müller-sprung.de`` → ``xn--mller-sprung-dlb.de``), as in the message's header.

    Raises ``ValidationError`` for a local part beyond ASCII: that needs SMTPUTF8,
    which the test e-mail does not use.
    """
    local, _at, domain = to.rpartition("@")
    if not local.isascii():
        raise ValidationError(
            _(
                "The part before the @ may only contain letters without accents, digits "
                "and punctuation. Enter another address for the test e-mail."
            ),
            code="non_ascii_local_part",
        )
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        raise ValidationError(_("Enter a valid e-mail address."), code="invalid") from None


# Every local may hold the password or a server reply that echoes it.
@sensitive_variables()
def send(to, *, user=None):
    """Send one test message to ``to``; return an ``Outcome`` (never raises for SMTP).

    One deadline (``ICARUS_SMTP_TIMEOUT``) covers the whole conversation.
    """
    sending = live.load()
    if sending.mailbox is None:
        return Outcome(False, _reason(sending))
    try:
        recipient = envelope_address(to)
    except ValidationError as error:
        return Outcome(False, error.messages[0], recipient=to)
    secrets = [sending.mailbox.password]
    message = _message(to, sending, user)
    transcript = []
    try:
        client = transport.connect(
            sending.mailbox, transport.Deadline(conf.get("TIMEOUT")), transcript=transcript
        )
        try:
            client.sendmail(sending.mailbox.username, [recipient], _as_bytes(message))
        finally:
            transport.quit_quietly(client)
    except (OSError, IcarusSmtpError, ValueError) as error:  # ValueError: unencodable data
        return _failed(error, to, transcript, secrets)
    return Outcome(
        True,
        _("The test e-mail was sent to %(to)s.") % {"to": to},
        recipient=to,
        transcript=_masked(transcript, secrets),
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
    return Outcome(
        False,
        _("The test e-mail could not be sent to %(to)s.") % {"to": to},
        recipient=to,
        category=failure.category,
        category_label=str(label),
        explanation=str(explanation),
        fix=str(fix),
        reply=failure.reply,
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
