"""Delivering: send claimed rows over one connection, retry later what was deferred.

The life of a message (``OutboxMessage.Status``)::

    accept() ─► queued ─► sending ─► sent
            │      ▲         ├─────► deferred ─► (backoff) ─► sending … ─► failed (too old)
            │      │         └─────► failed (5xx refusal, or a message that cannot be sent)
            └─► held ─(resume(): sending switched on, setup completed)─┘

* ``accept`` writes the rows in the caller's transaction with one ``bulk_create``.
* Rows accepted while sending is possible are born claimed by the accepting process,
  which sends them right after the commit (no separate claim).
* ``claim`` gives one worker a batch; ``store`` records each outcome.
"""

import logging
import smtplib
import threading
import time

from django.db import connections, router
from django.db.models import Min
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import conf, queue, signals
from ..exceptions import IcarusSmtpError
from ..models import OutboxMessage
from ..models.outbox import DEFERRED, FAILED, HELD, QUEUED
from ..setup import live
from ..smtp import addresses, failures, headers, transport
from . import alerts, pacing, wakeup
from .intake import accept
from .leases import claim, claimable, connections_wanted
from .store import Batch, Result, recipient_outcomes, refusal_failure, via

logger = logging.getLogger("wagtail_icarus_smtp")

#: How many batches one ``drain()`` sends at most before it hands over to the next task.
MAX_BATCHES = 50
#: How many message bodies are read at once (a claim reads ids and headers only).
BODY_CHUNK = 10


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
        queue.enqueue_delivery()
    return released + due


@sensitive_variables()
def _send_one(client, batch, row, sending, seconds):
    """Send ``row``; record its outcome. Returns False when the connection is gone."""
    secrets = [sending.mailbox.password]
    try:
        data = headers.with_mailbox_sender(
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
        if pacing.pause_for(failure, sending):  # the provider's send limit: stop here
            batch.finish(row, DEFERRED, failure)
            return False
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
        if pacing.pause_for(batch.session_ended, sending):
            batch.session_ended = None  # paused: the rest goes back untried
        return False
    outcome = recipient_outcomes(row, refused)
    failure = refusal_failure(refused) if refused else None
    batch.finish(row, outcome, failure, _refused_json(refused))
    return not pacing.pause_for(failure, sending)


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
        held = OutboxMessage.objects.filter(claimable(timezone.now()))
        if ids is not None:
            held = held.filter(pk__in=ids)
        return Result(held=held.update(status=HELD, lease_token="", lease_expires_at=None))
    limit = limit or (None if ids else conf.get("OUTBOX_BATCH_SIZE"))
    with pacing.room(sending) as allowed:  # the provider's send limit, or its pause
        if allowed == 0:
            return Result()
        rows, token = claim(ids=ids, limit=pacing.limited(limit, allowed))
    return _send_claimed(rows, token, sending)


def _send_claimed(rows, token, sending, timeout=None):
    """Send rows leased under ``token`` over one connection; record every outcome.

    ``timeout``: the deadline in seconds of each exchange (``ICARUS_SMTP_TIMEOUT`` when
    ``None``; a mailer's ``timeout`` option sets it for its own messages)."""
    mailbox = sending.mailbox
    batch = Batch(rows, token, via(mailbox.username, mailbox.host, mailbox.port))
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
    except failures.EXCHANGE_ERRORS as error:
        failure = failures.classify(error, secrets=secrets)
        if pacing.pause_for(failure, sending):  # not a failure: the rows wait unchanged
            batch.give_back(batch.rows)
            return
        batch.result.connection_failure = failure
        for row in batch.rows:
            batch.finish(row, DEFERRED, failure)
        logger.warning("SMTP connection failed (%s): messages deferred.", failure.category)
        return
    try:
        for index, row in enumerate(batch.rows):
            if index % BODY_CHUNK == 0:  # bodies a few at a time: memory stays bounded
                _load_bodies(batch.rows[index : index + BODY_CHUNK])
            sent = _send_one(client, batch, row, sending, seconds)
            row.mime = None  # this body is no longer needed
            if not sent:
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


def _load_bodies(rows):
    """Read the MIME of ``rows`` (claimed without it) in one query."""
    found = dict(
        OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).values_list("pk", "mime")
    )
    for row in rows:
        row.mime = found.get(row.pk)


def drain(max_batches=None):
    """Send due rows batch by batch until none is left (or the connection fails); at
    ``max_batches`` (``MAX_BATCHES``) the next drain is queued for the rest.

    A backlog of more than one batch goes out over up to ``ICARUS_SMTP_OUTBOX_CONNECTIONS``
    connections at once (counting other workers'): threads of this drain, each claiming
    its own batches. Not inside a transaction (other connections could not see its rows).
    """
    budget = _Budget(max_batches or MAX_BATCHES)
    extra = 0
    if not connections[router.db_for_write(OutboxMessage)].in_atomic_block:
        batch_size, maximum = conf.get("OUTBOX_BATCH_SIZE"), conf.get("OUTBOX_CONNECTIONS")
        extra = connections_wanted(batch_size, maximum)
    helpers = [_Helper(budget) for _ in range(extra)]
    for helper in helpers:
        helper.start()
    total = _drain_batches(budget)
    for helper in helpers:
        helper.join()
        if helper.error is not None:
            raise helper.error
        total.add(helper.result)
    if budget.capped:  # the next drain takes the rest (no backlog left behind)
        wakeup.wake()
    return total


class _Budget:
    """The batches one drain may still send, shared by its connections."""

    def __init__(self, batches):
        self.left = batches
        self.capped = False
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            if self.left <= 0:
                self.capped = True
                return False
            self.left -= 1
            return True


def _drain_batches(budget):
    total = Result()
    while budget.take():
        result = deliver(sending=live.load())
        total.add(result)
        if result.connection_failure is not None or not (result.attempted or result.released):
            break
    return total


class _Helper(threading.Thread):
    """One more connection of a drain, with its own database connection."""

    def __init__(self, budget):
        super().__init__(name="icarus-outbox-connection", daemon=True)
        self.budget = budget
        self.result = Result()
        self.error = None

    def run(self):
        try:
            self.result = _drain_batches(self.budget)
        except Exception as error:  # raised again by the drain that started it
            self.error = error
        finally:
            connections.close_all()


@sensitive_variables()
def deliver_accepted(rows, sending, timeout=None):
    """Right after the caller's commit: send the rows it just handed over (accepted
    with ``claimed=True``), in its process, over one connection."""
    start = time.monotonic()
    token = rows[0].lease_token
    rows, waiting = pacing.within(rows, sending)  # over the send limit: a worker's later
    try:
        result = _send_claimed(rows, token, sending, timeout)
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
        batch = Batch(rows, token)
        batch.give_back(rows)  # only rows still leased: those already sent keep their status
        result.released = batch.result.released
    result.released += waiting
    logger.debug("Delivered %s in %.3f s", result, time.monotonic() - start)
    if result.released:
        queue.enqueue_delivery()
    if result.deferred:
        schedule_retry()
    if result.failed or result.connection_failure is not None:
        alerts.evaluate(result)
    return result


def schedule_retry():
    """Make sure a drain task runs when the earliest deferred row is due."""
    first = OutboxMessage.objects.filter(status=DEFERRED).aggregate(Min("next_attempt_at"))
    when = first["next_attempt_at__min"]
    if when is not None:
        queue.schedule_delivery(when)


def _on_sending_possible(sender, **kwargs):
    resume()


def connect():
    """Release held mail when the setup says sending may be possible (``apps.ready``)."""
    signals.sending_possible.connect(_on_sending_possible, dispatch_uid="icarus.outbox.resume")
