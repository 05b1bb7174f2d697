"""Mail as data: accept messages as rows, claim them with a lease, deliver, retry.

The life of a message (``OutboxMessage.Status``)::

    accept() ─► queued ─► sending ─► sent
            │      ▲         ├─────► deferred ─► (backoff) ─► sending … ─► failed (too old)
            │      │         └─────► failed (5xx refusal, or a message that cannot be sent)
            └─► held ─(resume(): sending switched on, setup completed)─┘

* ``accept()`` writes the rows in the caller's transaction with one ``bulk_create``.
* Rows accepted while sending is possible are born claimed by the accepting process,
  which sends them right after the commit (no separate claim).
* ``claim()`` gives one worker a batch: ``SELECT … FOR UPDATE SKIP LOCKED`` and an
  ``UPDATE`` where the database has it, one ``UPDATE … WHERE pk IN (SELECT …)`` on
  SQLite (its writers are serialised), so two workers never send the same row; a lease
  that ran out (worker killed) makes the row claimable again — at least once, never
  zero times; the Message-ID stays the same.
* ``deliver()`` sends one claimed batch over one connection and records each result
  right after the server answered, so a killed worker causes at most one duplicate.
"""

import dataclasses
import functools
import logging
import random
import smtplib
import time
import uuid
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr

from django.db import connections, router, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import addresses, conf, failures, live, transport
from .exceptions import IcarusSmtpError
from .models import DeliveryAttempt, OutboxMessage

logger = logging.getLogger("wagtail_icarus_smtp")

Status = OutboxMessage.Status
QUEUED, HELD, SENDING, SENT, DEFERRED, FAILED = (
    Status.QUEUED,
    Status.HELD,
    Status.SENDING,
    Status.SENT,
    Status.DEFERRED,
    Status.FAILED,
)
#: Statuses that still wait for delivery.
WAITING = (QUEUED, HELD, DEFERRED, SENDING)
#: How many batches one ``drain()`` sends at most before it hands over to the next task.
MAX_BATCHES = 50


# -- accepting ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What the backend hands over for one message (built by Django, see backends)."""

    message_id: str
    subject: str
    sender: str
    has_reply_to: bool
    recipients: list
    mime: bytes


def envelope_of(message):
    """The ``Envelope`` of a Django ``EmailMessage`` that the package writes itself
    (notices to the owners): CRLF line ends, as Django's SMTP backend sends it."""
    try:
        mime = message.message(policy=SMTP_POLICY)
        data = mime.as_bytes()
    except TypeError:  # Django 5.2: message() takes no policy
        mime = message.message()
        data = mime.as_bytes(linesep="\r\n")
    return Envelope(
        message_id=str(mime["Message-ID"]),
        subject=str(message.subject),
        sender="",
        has_reply_to=False,
        recipients=list(message.recipients()),
        mime=data,
    )


def accept(envelopes, *, held, claimed=False):
    """Store ``envelopes`` as rows (one query); ``held`` when sending is not possible.

    ``claimed``: the rows are born leased to this process (status ``sending``), which
    delivers them right after the commit without a separate claim; should it die first,
    the lease runs out and a worker takes them over like any abandoned row.
    """
    now = timezone.now()
    status, lease = (HELD if held else QUEUED), {}
    if claimed and not held:
        status, lease = SENDING, _lease(now)
    rows = [
        OutboxMessage(
            created_at=now,
            next_attempt_at=now,
            status=status,
            **lease,
            message_id=envelope.message_id[:255],
            subject=envelope.subject[:255],
            sender=envelope.sender,
            has_reply_to=envelope.has_reply_to,
            recipients=envelope.recipients,
            recipient_list=", ".join(envelope.recipients)[:1000],
            mime=envelope.mime,
        )
        for envelope in envelopes
    ]
    return OutboxMessage.objects.bulk_create(rows)


@sensitive_variables("sending")
def send_now(envelopes, sending):
    """Store ``envelopes`` and send them at once through ``sending`` (which need not be
    the live configuration). What cannot be delivered stays in the outbox, deferred."""
    rows = accept(envelopes, held=False, claimed=True)
    return _send_claimed(rows, rows[0].lease_token, sending) if rows else Result()


def resume():
    """Sending is possible again: held rows are queued, deferred rows are due now,
    and a drain task is queued. Rows keep their order (oldest first).

    Does nothing while sending is still not possible (switched off, nothing live).
    """
    if live.load().mailbox is None:
        return 0
    now = timezone.now()
    released = OutboxMessage.objects.filter(status=HELD).update(status=QUEUED, next_attempt_at=now)
    due = OutboxMessage.objects.filter(status=DEFERRED).update(next_attempt_at=now)
    if released or due:
        from . import tasks

        tasks.enqueue_delivery()
    return released + due


def release(queryset):
    """Editors' "release": held or deferred rows of ``queryset`` become due now."""
    now = timezone.now()
    count = queryset.filter(status__in=(HELD, DEFERRED)).update(status=QUEUED, next_attempt_at=now)
    return count


def resend(queryset):
    """Editors' "resend": sent or failed rows (with a body) go out again to everyone."""
    now = timezone.now()
    return queryset.filter(status__in=(SENT, FAILED), body_purged_at__isnull=True).update(
        status=QUEUED, next_attempt_at=now, recipient_status={}, last_category="", last_reply=""
    )


def discard(queryset, *, reason):
    """Editors' "discard": waiting rows fail now and lose their body."""
    now = timezone.now()
    return queryset.filter(status__in=(QUEUED, HELD, DEFERRED)).update(
        status=FAILED, mime=None, body_purged_at=now, last_category="", last_reply=reason[:500]
    )


# -- claiming ----------------------------------------------------------------------------


def _claimable(now):
    due = Q(status__in=(QUEUED, DEFERRED), next_attempt_at__lte=now)
    abandoned = Q(status=SENDING, lease_expires_at__lt=now)
    return due | abandoned


def _lease(now):
    return {
        "lease_token": uuid.uuid4().hex,
        "lease_expires_at": now + timedelta(seconds=conf.get("OUTBOX_LEASE")),
    }


def claim(*, ids=None, limit=None):
    """Claim due rows (oldest first) for this worker; return them with their lease token.

    ``ids`` restricts the claim to rows just accepted by this process.
    """
    now = timezone.now()
    lease = {"status": SENDING, **_lease(now)}
    token = lease["lease_token"]
    candidates = OutboxMessage.objects.filter(_claimable(now))
    if ids is not None:
        candidates = candidates.filter(pk__in=ids)
    candidates = candidates.order_by("created_at", "pk").values_list("pk", flat=True)
    db = router.db_for_write(OutboxMessage)
    if connections[db].features.has_select_for_update_skip_locked:
        with transaction.atomic(using=db):
            pks = list(candidates.select_for_update(skip_locked=True)[:limit])
            OutboxMessage.objects.filter(_claimable(now), pk__in=pks).update(**lease)
    else:
        # SQLite: one UPDATE picks and leases the rows. Writers are serialised, so no
        # other worker claims them in between (a separate SELECT could lose that race
        # and leave this worker with an empty batch while due rows remain).
        OutboxMessage.objects.filter(pk__in=candidates[:limit]).update(**lease)
    rows = OutboxMessage.objects.filter(lease_token=token, status=SENDING)
    return list(rows.order_by("created_at", "pk")), token


# -- delivering --------------------------------------------------------------------------


def retry_delay(attempts):
    """Seconds before attempt ``attempts + 1``: exponential, capped, with jitter."""
    base = conf.get("RETRY_DELAY") * 2 ** max(attempts - 1, 0)
    delay = min(base, conf.get("RETRY_MAX_DELAY"))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not cryptography)


def with_mailbox_sender(mime, mailbox, from_name, sender, has_reply_to):
    """``mime`` with From set to the mailbox; a foreign original sender becomes Reply-To.

    Only the header block is touched: the body bytes go out exactly as Django built them.
    """
    head, separator, body = mime.partition(b"\r\n\r\n")
    kept, skipping = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = line.split(b":", 1)[0].strip().lower() == b"from"
        if not skipping:
            kept.append(line)
    new_headers = _sender_headers(mailbox, from_name, sender, has_reply_to)
    return b"\r\n".join([*new_headers, *kept]) + separator + body


@functools.lru_cache(maxsize=256)
def _sender_headers(mailbox, from_name, sender, has_reply_to):
    """The From (and Reply-To) header lines, folded and encoded: the same for every
    message of a batch, so built once (the email package is slow at it)."""
    added = EmailMessage(policy=SMTP_POLICY)
    added["From"] = Address(display_name=from_name, addr_spec=addresses.ascii_if_possible(mailbox))
    foreign = sender and parseaddr(sender)[1].lower() != mailbox.lower()
    if foreign and not has_reply_to:
        added["Reply-To"] = sender
    return tuple(added.as_bytes().rstrip(b"\r\n").split(b"\r\n"))


@dataclasses.dataclass
class Result:
    """Counts of one ``deliver()`` or ``drain()`` run."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    held: int = 0
    released: int = 0
    connection_failure: failures.Failure | None = None

    def add(self, other):
        for name in ("sent", "deferred", "failed", "held", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.connection_failure = other.connection_failure or self.connection_failure

    @property
    def attempted(self):
        return self.sent + self.deferred + self.failed


def via(login, host, port):
    """How the delivery log names a configuration: ``login @ host:port``."""
    return f"{login} @ {host}:{port}"


class _Batch:
    """Records the outcome of each claimed row as soon as it is known."""

    def __init__(self, rows, token, via=""):
        self.rows = rows
        self.token = token
        self.via = via
        self.attempts = []
        self.result = Result()
        #: The ``Failure`` of a ``421``: the server ended the session (RFC 5321 3.8).
        self.session_ended = None

    def finish(self, row, outcome, failure=None, refused=None):
        now = timezone.now()
        if outcome == DEFERRED and now - row.created_at >= timedelta(seconds=conf.get("MAX_AGE")):
            outcome = FAILED
        fields = {
            "status": outcome,
            "lease_token": "",
            "lease_expires_at": None,
            "recipient_status": row.recipient_status,
            "last_category": failure.category if failure else "",
            "last_reply": failure.reply if failure else "",
        }
        if outcome == SENT:
            fields["sent_at"] = now
            fields["sent_via"] = self.via
        if outcome == DEFERRED:
            fields["next_attempt_at"] = now + timedelta(seconds=retry_delay(row.attempts + 1))
        _record(row.pk, self.token, fields)
        self.attempts.append(
            DeliveryAttempt(
                message_id=row.pk,
                created_at=now,
                status=outcome,
                category=fields["last_category"],
                reply=fields["last_reply"],
                refused=refused or {},
            )
        )
        setattr(self.result, outcome, getattr(self.result, outcome) + 1)

    def give_back(self, rows):
        """Rows this batch did not try: claimable again at once, no attempt counted."""
        pks = [row.pk for row in rows]
        OutboxMessage.objects.filter(pk__in=pks, lease_token=self.token).update(
            status=QUEUED, lease_token="", lease_expires_at=None
        )
        self.result.released += len(pks)

    def save_attempts(self):
        DeliveryAttempt.objects.bulk_create(self.attempts)
        self.attempts = []


def _record(pk, token, fields):
    """``UPDATE`` one leased row with ``fields`` and one more attempt, in one statement.

    What ``QuerySet.update()`` does, minus compiling the query for every message of a
    batch (it was a third of the cost of sending one over an open connection).
    """
    connection = connections[router.db_for_write(OutboxMessage)]
    names = tuple(fields)
    values = [
        OutboxMessage._meta.get_field(name).get_db_prep_save(fields[name], connection)
        for name in names
    ]
    key = (connection.vendor, names)
    if key not in _RECORD_SQL:
        _RECORD_SQL[key] = _record_sql(connection, names)
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL[key], [*values, pk, token])


#: ``(vendor, field names)`` → the ``UPDATE`` statement ``_record`` runs.
_RECORD_SQL = {}


def _record_sql(connection, names):
    meta, quote = OutboxMessage._meta, connection.ops.quote_name
    columns = [quote(meta.get_field(name).column) for name in names]
    attempts = quote(meta.get_field("attempts").column)
    assignments = [f"{column} = %s" for column in columns] + [f"{attempts} = {attempts} + 1"]
    pk, token = quote(meta.pk.column), quote(meta.get_field("lease_token").column)
    # Only quoted names from the model; every value is a parameter.
    return (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {pk} = %s AND {token} = %s"
    )


def _recipient_outcomes(row, refused):
    """Update ``row.recipient_status`` from smtplib's refused dict; return the outcome."""
    for recipient in row.pending_recipients:
        if recipient in refused:
            code, reply = refused[recipient]
            text = f"{code} {failures._decode(reply)}"[: failures.MAX_REPLY]
            state = DEFERRED if 400 <= code < 500 else FAILED
            row.recipient_status[recipient] = {"status": state, "reply": text}
        else:
            row.recipient_status[recipient] = {"status": SENT, "reply": ""}
    states = {entry["status"] for entry in row.recipient_status.values()}
    if DEFERRED in states:
        return DEFERRED
    return FAILED if FAILED in states else SENT


def _refusal_failure(refused):
    """A ``Failure`` summarising refused recipients (the first one's reply)."""
    recipient, (code, reply) = next(iter(refused.items()))
    failure = failures.classify(smtplib.SMTPResponseException(code, reply))
    text = f"{len(refused)} recipient(s) refused, e.g. {recipient}: {failure.reply}"
    return failures.Failure(failure.category, text[: failures.MAX_REPLY])


# Every local may hold the password, the message or a server reply that echoes it.
@sensitive_variables()
def _send_one(client, batch, row, sending, seconds):
    """Send ``row``; record its outcome. Returns False when the connection is gone."""
    secrets = [sending.mailbox.password]
    try:
        data = with_mailbox_sender(
            bytes(row.mime),
            sending.mailbox.username,
            sending.from_name,
            row.sender,
            row.has_reply_to,
        )
    except (TypeError, ValueError) as error:  # no body (purged) or an unusable header
        batch.finish(row, FAILED, failures.classify(error))
        return True
    client.start_exchange(seconds)
    try:
        sender, options = addresses.envelope(client, sending.mailbox.username)
        refused = client.sendmail(sender, row.pending_recipients, data, mail_options=options)
    except smtplib.SMTPRecipientsRefused as error:  # all refused: recorded as below
        refused = error.recipients
    except smtplib.SMTPResponseException as error:
        failure = failures.classify(error, secrets=secrets)
        temporary = 400 <= error.smtp_code < 500
        batch.finish(row, DEFERRED if temporary else FAILED, failure)
        if error.smtp_code == 421:
            batch.session_ended = failure
        return error.smtp_code != 421 and client.sock is not None
    except (OSError, IcarusSmtpError) as error:  # disconnected, timeout, reply too long
        batch.finish(row, DEFERRED, failures.classify(error, secrets=secrets))
        return False
    except ValueError as error:  # e.g. an address smtplib cannot encode: never sendable
        batch.finish(row, FAILED, failures.classify(error, secrets=secrets))
        return False  # the server may be inside this message's transaction
    refused = {  # a server may echo the credentials in any reply
        recipient: (code, failures.mask(failures._decode(reply), secrets))
        for recipient, (code, reply) in refused.items()
    }
    ended = [(code, reply) for code, reply in refused.values() if code == 421]
    if ended:  # smtplib stopped at the 421: nothing was sent, later recipients untried
        batch.session_ended = failures.classify(smtplib.SMTPResponseException(*ended[0]))
        batch.finish(row, DEFERRED, batch.session_ended)
        return False
    outcome = _recipient_outcomes(row, refused)
    failure = _refusal_failure(refused) if refused else None
    batch.finish(row, outcome, failure, _refused_json(refused))
    return True


def _refused_json(refused):
    return {
        recipient: f"{code} {failures._decode(reply)}"[: failures.MAX_REPLY]
        for recipient, (code, reply) in refused.items()
    }


@sensitive_variables("sending")
def deliver(*, ids=None, sending=None, limit=None):
    """Claim one batch and send it over one connection. Returns a ``Result``.

    Without a usable live configuration, due rows are put on hold instead.
    """
    if sending is None:
        sending = live.load()
    if sending.mailbox is None:
        held = OutboxMessage.objects.filter(_claimable(timezone.now()))
        if ids is not None:
            held = held.filter(pk__in=ids)
        return Result(held=held.update(status=HELD, lease_token="", lease_expires_at=None))
    rows, token = claim(ids=ids, limit=limit or (None if ids else conf.get("OUTBOX_BATCH_SIZE")))
    return _send_claimed(rows, token, sending)


def _send_claimed(rows, token, sending, timeout=None):
    """Send rows leased under ``token`` over one connection; record every outcome.

    ``timeout``: the deadline in seconds of each exchange (``ICARUS_SMTP_TIMEOUT`` when
    ``None``; a mailer's ``timeout`` option sets it for its own messages)."""
    mailbox = sending.mailbox
    batch = _Batch(rows, token, via(mailbox.username, mailbox.host, mailbox.port))
    if not rows:
        return batch.result
    try:
        _deliver_batch(batch, sending, timeout or conf.get("TIMEOUT"))
    finally:
        batch.save_attempts()
    return batch.result


@sensitive_variables()
def _deliver_batch(batch, sending, seconds):
    secrets = [sending.mailbox.password]
    try:
        client = transport.connect(sending.mailbox, transport.Deadline(seconds))
    except (OSError, IcarusSmtpError, smtplib.SMTPException) as error:
        failure = failures.classify(error, secrets=secrets)
        batch.result.connection_failure = failure
        for row in batch.rows:
            batch.finish(row, DEFERRED, failure)
        logger.warning("SMTP connection failed (%s): messages deferred.", failure.category)
        return
    try:
        for index, row in enumerate(batch.rows):
            if not _send_one(client, batch, row, sending, seconds):
                _end_batch(batch, batch.rows[index + 1 :])
                break
    finally:
        transport.quit_quietly(client)


def _end_batch(batch, rest):
    """The connection is gone before ``rest`` was tried. After a ``421`` the server
    has said why: each row is deferred with that reply (a new connection now would
    most likely hear the same); otherwise the rows are given back for the next run."""
    if batch.session_ended is None:
        batch.give_back(rest)
        return
    for row in rest:
        batch.finish(row, DEFERRED, batch.session_ended)


def drain(max_batches=MAX_BATCHES):
    """Send due rows batch by batch until none is left (or the connection fails)."""
    total = Result()
    for _ in range(max_batches):
        sending = live.load()
        result = deliver(sending=sending)
        total.add(result)
        if result.connection_failure is not None or not (result.attempted or result.released):
            break
    return total


@sensitive_variables()
def deliver_accepted(rows, sending, timeout=None):
    """Right after the caller's commit: send the rows it just handed over (accepted
    with ``claimed=True``), in its process, over one connection."""
    start = time.monotonic()
    try:
        result = _send_claimed(rows, rows[0].lease_token, sending, timeout)
    except Exception as error:
        # Whatever went wrong here must not turn the caller's committed work (a
        # booking) into an error page: the rows not yet sent go back to a worker.
        # Logged without traceback: the locals of its frames hold the password.
        logger.error(
            "Sending accepted e-mails failed (%s: %s); they are queued for a worker.",
            type(error).__name__,
            failures.mask(str(error), [sending.mailbox.password]),
        )
        result = Result()
        batch = _Batch(rows, rows[0].lease_token)
        batch.give_back(rows)  # only rows still leased: those already sent keep their status
        result.released = batch.result.released
    logger.debug("Delivered %s in %.3f s", result, time.monotonic() - start)
    if result.released:
        from . import tasks

        tasks.enqueue_delivery()
    if result.deferred:
        schedule_retry()
    if result.failed or result.connection_failure is not None:
        from . import alerts

        alerts.evaluate(result)
    return result


def schedule_retry():
    """Make sure a drain task runs when the earliest deferred row is due."""
    from . import tasks

    first = OutboxMessage.objects.filter(status=DEFERRED).aggregate(Min("next_attempt_at"))
    when = first["next_attempt_at__min"]
    if when is not None:
        tasks.schedule_delivery(when)


# -- housekeeping and reporting ----------------------------------------------------------


def purge(now=None):
    """Delete bodies after ``BODY_RETENTION`` days, finished rows after ``LOG_RETENTION``.

    Waiting rows keep their body (it is still needed). Returns ``(bodies, rows)``.
    """
    now = now or timezone.now()
    body_limit = now - timedelta(days=conf.get("BODY_RETENTION"))
    bodies = OutboxMessage.objects.filter(
        created_at__lt=body_limit, body_purged_at__isnull=True, status__in=(SENT, FAILED)
    ).update(mime=None, body_purged_at=now)
    log_limit = now - timedelta(days=conf.get("LOG_RETENTION"))
    _, deleted = OutboxMessage.objects.filter(
        created_at__lt=log_limit, status__in=(SENT, FAILED)
    ).delete()
    return bodies, deleted.get(OutboxMessage._meta.label, 0)


def counts():
    """``{status: count}`` for every status (zeros included)."""
    found = dict(OutboxMessage.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return {value: found.get(value, 0) for value in Status.values}


def summary(now=None):
    """What the status bar and the operator command show (JSON-serialisable)."""
    now = now or timezone.now()
    by_status = counts()
    oldest = OutboxMessage.objects.filter(status__in=(HELD, DEFERRED)).aggregate(Min("created_at"))[
        "created_at__min"
    ]
    return {
        "counts": by_status,
        "held": by_status[HELD],
        "deferred": by_status[DEFERRED],
        "waiting": by_status[HELD] + by_status[DEFERRED],
        "failed": by_status[FAILED],
        "oldest_waiting": oldest.isoformat() if oldest else None,
        "oldest_age_seconds": round((now - oldest).total_seconds()) if oldest else None,
    }
