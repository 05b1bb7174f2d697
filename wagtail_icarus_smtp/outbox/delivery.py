"""Delivering: send claimed rows over one connection, retry later what was deferred.

The life of a message (``OutboxMessage.Status``)::

    accept() ─► queued ─► sending ─► sent
            │      ▲         ├─────► deferred ─► (backoff) ─► sending … ─► failed (too old)
            │      │         └─────► failed (5xx refusal, or a message that cannot be sent)
            └─► held ─(resume(): sending switched on, setup completed)─┘

* ``accept`` writes the rows in the caller's transaction with one ``bulk_create``.
* Rows accepted while sending is possible are born claimed by the accepting process,
  which sends them right after the commit (no separate claim).
* ``claim`` gives one worker a batch; ``store`` records the outcomes, a group at a time.
* Where the server offers PIPELINING and CHUNKING, a window of messages shares a
  round trip (``smtp/chunking``); with PIPELINING alone a message costs about one
  (``smtp/pipelining``); elsewhere it goes lock-step (``sendmail``). All end in
  ``_record_outcome``.
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
from ..smtp import addresses, chunking, failures, headers, pipelining, transport
from . import alerts, pacing, wakeup
from .intake import accept
from .leases import claim, claimable, connections_wanted
from .store import Batch, Result, recipient_outcomes, refusal_failure, via

logger = logging.getLogger("wagtail_icarus_smtp")

#: How many batches one ``drain()`` sends at most before it hands over to the next task.
MAX_BATCHES = 50
#: How many bytes of message bodies are read in one query at most (a claim reads ids,
#: headers and sizes, not the bodies): hundreds of bookings per query, a message of a
#: megabyte or more alone — each connection holds about two bodies at a time.
BODY_CHUNK_BYTES = 1024 * 1024


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
def _record_outcome(client, batch, row, outcome, secrets):
    """Record what the server answered for ``row``: ``outcome`` is the dict of refused
    recipients (what ``sendmail`` returns) or the exception that ended its transaction.
    Returns False when the session cannot go on.

    The one place where an answer becomes a row's status, for lock-step and pipelined
    sending alike.
    """
    all_refused = isinstance(outcome, smtplib.SMTPRecipientsRefused)
    if all_refused:  # recorded as below
        outcome = outcome.recipients
    if isinstance(outcome, smtplib.SMTPResponseException):
        failure = failures.classify(outcome, secrets=secrets)
        if _refused_after_send_limit(batch, failure):
            return outcome.smtp_code != 421 and client.sock is not None
        limited = _heard_send_limit(batch, failure)  # deferred even as 554 (Microsoft)
        temporary = limited or 400 <= outcome.smtp_code < 500
        batch.finish(row, DEFERRED if temporary else FAILED, failure)
        if outcome.smtp_code == 421 and not limited:
            batch.session_ended = failure
        return outcome.smtp_code != 421 and client.sock is not None
    if isinstance(outcome, (OSError, IcarusSmtpError)):  # disconnected, timeout, too long
        batch.finish(row, DEFERRED, failures.classify(outcome, secrets=secrets))
        return False
    if isinstance(outcome, ValueError):  # e.g. an address smtplib cannot encode
        batch.finish(row, FAILED, failures.classify(outcome, secrets=secrets))
        return False  # the server may be inside this message's transaction
    refused = {  # a server may echo the credentials in any reply
        recipient: (code, failures.mask(failures._decode(reply), secrets))
        for recipient, (code, reply) in outcome.items()
    }
    ended = [(code, reply) for code, reply in refused.values() if code == 421]
    if ended:  # smtplib stopped at the 421: nothing was sent, later recipients untried
        batch.session_ended = failures.classify(smtplib.SMTPResponseException(*ended[0]))
        batch.finish(row, DEFERRED, batch.session_ended)
        if _heard_send_limit(batch, batch.session_ended):
            batch.session_ended = None  # the rest goes back untried
        return False
    failure = refusal_failure(refused) if refused else None
    if all_refused and _refused_after_send_limit(batch, failure):
        return True
    state = recipient_outcomes(row, refused)
    batch.finish(row, state, failure, _refused_json(refused))
    _heard_send_limit(batch, failure)
    return True


def _refused_after_send_limit(batch, failure):
    """``failure`` is the send limit again, for a message that went out before the
    first one was heard (pipelined, or in a ``smtp/chunking`` window): it was not taken,
    so it waits unchanged with the untried rest (given back by ``_end_batch``)."""
    return batch.send_limit is not None and pacing.is_send_limit(failure)


def _heard_send_limit(batch, failure):
    """``failure`` is the provider's send limit (``rate_limited``): no further message
    of this batch goes out (``_messages``); the outbox pauses (``_deliver_batch``)."""
    if not pacing.is_send_limit(failure):
        return False
    batch.send_limit = failure
    return True


@sensitive_variables()
def _send_lock_step(client, batch, messages, seconds, secrets):
    """One message after the other, each command waiting for its reply (``sendmail``)."""
    for message in messages:
        client.start_exchange(seconds)
        try:
            outcome = client.sendmail(
                message.sender, message.recipients, message.data, mail_options=message.options
            )
        except (*failures.EXCHANGE_ERRORS, ValueError) as error:
            outcome = error
        going_on = _record_outcome(client, batch, message.tag, outcome, secrets)
        del message, outcome  # its content is not held while the next one is read
        if not going_on:
            return


@sensitive_variables()
def _send_pipelined(client, batch, messages, seconds, secrets, send=pipelining.send):
    """Commands in groups (``send``: ``smtp/pipelining``, about one round trip per
    message, or ``smtp/chunking``, a window of messages per round trip)."""
    for message, outcome in send(client, messages, seconds):
        going_on = _record_outcome(client, batch, message.tag, outcome, secrets)
        del message, outcome  # its content is not held while the next one is read
        if not going_on:
            return


@sensitive_variables()
def _messages(client, batch, sending, secrets):
    """Each row ready to go, as a ``pipelining.Transaction`` tagged with the row; the
    bodies are read a chunk at a time. A row that cannot be sent (no body, an unusable
    header) is recorded as failed here; a sender this server cannot take ends it. At
    the drain's time limit (``batch.until``) the rest is left: it is given back."""
    for chunk in _body_chunks(batch.rows):
        _load_bodies(chunk)
        for row in chunk:
            if batch.until is not None and time.monotonic() >= batch.until:
                return
            if batch.send_limit is not None:  # the provider's limit: the rest waits
                return
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
                continue
            finally:
                row.mime = None  # the body is no longer needed: the message has a copy
            try:
                sender, options = addresses.envelope(client, sending.mailbox.username)
            except IcarusSmtpError as error:
                _record_outcome(client, batch, row, error, secrets)
                return
            yield pipelining.Transaction(sender, row.pending_recipients, data, options, tag=row)


def _refused_json(refused):
    return {
        recipient: f"{code} {failures._decode(reply)}"[: failures.MAX_REPLY]
        for recipient, (code, reply) in refused.items()
    }


@sensitive_variables("sending")
def deliver(*, ids=None, sending=None, limit=None, until=None):
    """Claim one batch and send it over one connection. Returns a ``Result``.

    Without a usable live configuration, due rows are put on hold instead. ``until``
    (``time.monotonic()``): what is not sent by then is given back.
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
    return _send_claimed(rows, token, sending, until=until)


def _send_claimed(rows, token, sending, timeout=None, until=None):
    """Send rows leased under ``token`` over one connection; record every outcome.

    ``timeout``: the deadline in seconds of each exchange (``ICARUS_SMTP_TIMEOUT`` when
    ``None``; a mailer's ``timeout`` option sets it for its own messages)."""
    mailbox = sending.mailbox
    batch = Batch(rows, token, via(mailbox.username, mailbox.host, mailbox.port))
    batch.until = until
    batch.send_limit = None  # the ``Failure`` of a provider's rate-limit reply, if one came
    if not rows:
        return batch.result
    try:
        _deliver_batch(batch, sending, timeout or conf.get("TIMEOUT"))
    finally:
        batch.close()
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
    batch.sending_starts()
    try:
        messages = _messages(client, batch, sending, secrets)
        if chunking.offered(client):
            _send_pipelined(client, batch, messages, seconds, secrets, chunking.send)
        elif pipelining.offered(client):
            _send_pipelined(client, batch, messages, seconds, secrets)
        else:
            _send_lock_step(client, batch, messages, seconds, secrets)
        pacing.pause_for(batch.send_limit, sending)
        _end_batch(batch, batch.unfinished())
    finally:
        transport.quit_quietly(client)


def _end_batch(batch, rest):
    """The connection is gone before ``rest`` was tried (none when all were). After a
    ``421`` the server has said why: each row is deferred with that reply (a new
    connection now would most likely hear the same); otherwise the rows are given back
    for the next run."""
    if batch.session_ended is None:
        if rest:
            batch.give_back(rest)
        return
    for row in rest:
        batch.finish(row, DEFERRED, batch.session_ended)


def _body_chunks(rows):
    """``rows`` in runs whose bodies together stay within ``BODY_CHUNK_BYTES`` (at
    least one row each): small messages come a few hundred per query, large ones a
    few, so memory stays bounded. The sizes come with the claim (``mime_size``)."""
    chunk, size = [], 0
    for row in rows:
        row_size = getattr(row, "mime_size", None) or 0
        if chunk and size + row_size > BODY_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += row_size
    if chunk:
        yield chunk


def _load_bodies(rows):
    """Read the MIME of those ``rows`` claimed without it, in one query (rows just
    accepted by this process still hold theirs)."""
    missing = [row for row in rows if "mime" in row.get_deferred_fields()]
    if not missing:
        return
    found = dict(
        OutboxMessage.objects.filter(pk__in=[row.pk for row in missing]).values_list("pk", "mime")
    )
    for row in missing:
        row.mime = found.get(row.pk)


def drain(max_batches=None):
    """Send due rows batch by batch until none is left (or the connection fails); at
    ``max_batches`` (``MAX_BATCHES``) or after ``ICARUS_SMTP_DRAIN_SECONDS`` (within
    django-q2's task timeout) the next drain is queued for the rest.

    A backlog goes out over up to ``ICARUS_SMTP_OUTBOX_CONNECTIONS`` connections at once
    (counting other workers'; ``leases.CONNECTION_SHARE`` messages at least each):
    threads of this drain, each claiming its own batches. Not inside a transaction
    (other connections could not see its rows).
    """
    budget = _Budget(max_batches or MAX_BATCHES, time.monotonic() + conf.get("DRAIN_SECONDS"))
    budget.limit = batch_size = conf.get("OUTBOX_BATCH_SIZE")
    extra = 0
    if not connections[router.db_for_write(OutboxMessage)].in_atomic_block:
        maximum = conf.get("OUTBOX_CONNECTIONS")
        extra, budget.limit, budget.due = connections_wanted(batch_size, maximum)
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
    """The batches and the time one drain may still send, shared by its connections."""

    def __init__(self, batches, until):
        self.left = batches
        self.until = until
        #: How many rows each connection claims at a time.
        self.limit = None
        #: Rows due when the drain began and not yet claimed (``None``: unknown). When
        #: all are claimed, no connection asks again: mail due later wakes a drain
        #: itself (a hand-over, the retry schedule).
        self.due = None
        self.capped = False
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            if self.due is not None and self.due <= 0:
                return False
            if self.left <= 0 or time.monotonic() >= self.until:
                self.capped = True
                return False
            self.left -= 1
            if self.due is not None:
                self.due -= self.limit
            return True

    def given_back(self, rows):
        """``rows`` claimed but not tried are due again."""
        with self._lock:
            if self.due is not None:
                self.due += rows


def _drain_batches(budget):
    total = Result()
    while budget.take():
        result = deliver(sending=live.load(), limit=budget.limit, until=budget.until)
        total.add(result)
        budget.given_back(result.released)
        if result.connection_failure is not None or not (result.attempted or result.released):
            break
        if not result.released and result.attempted < budget.limit:
            break  # the claim took fewer rows than it could: no more were due
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
