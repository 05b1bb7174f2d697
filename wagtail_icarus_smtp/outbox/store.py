"""The outcome writes: each message's outcome, written for a group of messages at once,
and the attempts.

A group is written when it is full (``GROUP_SIZE`` outcomes) or when the last write is
``FLUSH_SECONDS`` old, whichever comes first, in one ``UPDATE`` whatever its size: the
database cost of a batch stays a few statements, while a slow server still has each
outcome written right after its answer. A worker killed before a write re-sends at most
the group not yet written (at most ``GROUP_SIZE`` messages, in practice those of the
last ``FLUSH_SECONDS``) — with the same Message-ID, so receivers can tell.
"""

import dataclasses
import random
import smtplib
import time
from datetime import timedelta

from django.db import connections, router
from django.utils import timezone

from .. import conf
from ..models import DeliveryAttempt, OutboxMessage
from ..models.outbox import DEFERRED, FAILED, QUEUED, SENT
from ..smtp import failures

#: Outcomes written in one statement at most (bounds what a killed worker re-sends).
GROUP_SIZE = 100
#: Seconds after which the outcomes known so far are written, however few.
FLUSH_SECONDS = 0.05
#: A group write renews the lease of the batch's other rows once less than this share
#: of ``ICARUS_SMTP_OUTBOX_LEASE`` is left; before that it touches its own rows only
#: (a database may rewrite a whole row, body included, for any change of it).
RENEW_WHEN_LEFT = 0.5


def retry_delay(attempts):
    """Seconds before attempt ``attempts + 1``: exponential, capped, with jitter."""
    base = conf.get("RETRY_DELAY") * 2 ** max(attempts - 1, 0)
    delay = min(base, conf.get("RETRY_MAX_DELAY"))
    return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not cryptography)


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


class Batch:
    """Records the outcome of each claimed row, a group at a time (``flush``).

    ``finish`` keeps the outcome; it is written with the group. ``close`` writes what
    is left and the attempts: call it when the batch ends, also after an error.
    """

    def __init__(self, rows, token, via=""):
        self.rows = rows
        self.token = token
        self.via = via
        self.attempts = []
        self.result = Result()
        #: The ``Failure`` of a ``421``: the server ended the session (RFC 5321 3.8).
        self.session_ended = None
        #: ``time.monotonic()`` after which no more rows are started (the drain's limit).
        self.until = None
        #: ``(pk, fields)`` of outcomes not written yet.
        self.unwritten = []
        self.finished = set()
        self.written_at = time.monotonic()
        #: When the lease of the rows not finished yet runs out (as the claim set it).
        self.lease_expires_at = min(
            (row.lease_expires_at for row in rows if row.lease_expires_at), default=None
        )

    def finish(self, row, outcome, failure=None, refused=None):
        now = timezone.now()
        if outcome == DEFERRED and now - row.created_at >= timedelta(seconds=conf.get("MAX_AGE")):
            outcome = FAILED
        fields = {
            "status": outcome,
            "lease_token": "",
            "recipient_status": row.recipient_status,
            "last_category": failure.category if failure else "",
            "last_reply": failure.reply if failure else "",
        }
        if outcome == SENT:
            fields["sent_at"] = now
            fields["sent_via"] = self.via
        if outcome == DEFERRED:
            fields["next_attempt_at"] = now + timedelta(seconds=retry_delay(row.attempts + 1))
        self.unwritten.append((row.pk, fields))
        self.finished.add(row.pk)
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
        if len(self.unwritten) >= GROUP_SIZE or time.monotonic() - self.written_at >= FLUSH_SECONDS:
            self.flush()

    def sending_starts(self):
        """The connection is open: ``FLUSH_SECONDS`` count from now, not from the claim
        (else the first outcome after a slow login would be written alone)."""
        self.written_at = time.monotonic()

    def unfinished(self):
        """The rows without an outcome yet (not tried, or cut off)."""
        return [row for row in self.rows if row.pk not in self.finished]

    def flush(self):
        """Write the outcomes not written yet, in one statement (which renews the lease
        of the other rows when it runs out soon)."""
        if self.unwritten:
            _record(self.unwritten, self.token, self._renewal())
            self.unwritten = []
        self.written_at = time.monotonic()

    def _renewal(self):
        """The new end of the lease if it is due for renewal, else ``None``."""
        now, lease = timezone.now(), timedelta(seconds=conf.get("OUTBOX_LEASE"))
        expires = self.lease_expires_at
        if expires is not None and expires - now > lease * RENEW_WHEN_LEFT:
            return None
        self.lease_expires_at = now + lease
        return self.lease_expires_at

    def give_back(self, rows):
        """Rows this batch did not try: claimable again at once, no attempt counted."""
        pks = [row.pk for row in rows]
        OutboxMessage.objects.filter(pk__in=pks, lease_token=self.token).update(
            status=QUEUED, lease_token="", lease_expires_at=None
        )
        self.result.released += len(pks)

    def close(self):
        """Write the outcomes still unwritten, then the attempts (one ``bulk_create``)."""
        self.flush()
        DeliveryAttempt.objects.bulk_create(self.attempts)
        self.attempts = []


def _record(outcomes, token, renewed=None):
    """Write ``outcomes`` (``[(pk, fields)]``) to the rows still leased under ``token``,
    one more attempt each, in one ``UPDATE``; with ``renewed`` (a time) the other rows
    of the batch (not finished yet) get their lease renewed until then in the same
    statement, so a long batch that makes progress keeps its rows.

    A field with one value for the whole group is one ``CASE WHEN pk IN (…)``; a field
    whose value differs per row (``sent_at``, ``recipient_status``) is a ``CASE`` on
    the primary key; a row that does not set a field keeps its value. A row whose
    lease another worker took over (another token) is not touched: the new owner's
    outcome stands.
    """
    connection = connections[router.db_for_write(OutboxMessage)]
    meta, quote = OutboxMessage._meta, connection.ops.quote_name
    pk_column = quote(meta.pk.column)
    token_column = quote(meta.get_field("lease_token").column)
    # The primary keys (integers) are written into the statement, the values are
    # parameters: ~2 per row, far below SQLite's oldest limit of 999.
    pks = [int(pk) for pk, _fields in outcomes]
    in_group = f"{pk_column} IN ({', '.join(map(str, pks))})"
    names = list(dict.fromkeys(name for _pk, fields in outcomes for name in fields))
    assignments, params = [], []
    for name in names:
        field = meta.get_field(name)
        column = quote(field.column)
        setting = [(pk, fields[name]) for pk, fields in outcomes if name in fields]
        values = [field.get_db_prep_save(value, connection) for _pk, value in setting]
        if len(setting) == len(outcomes) and _all_equal([value for _pk, value in setting]):
            assignments.append(f"{column} = CASE WHEN {in_group} THEN %s ELSE {column} END")
            params.append(values[0])
            continue
        cases = " ".join(f"WHEN {pk_column} = {int(pk)} THEN %s" for pk, _value in setting)
        assignments.append(f"{column} = CASE {cases} ELSE {column} END")
        params += values
    expires = meta.get_field("lease_expires_at")
    column = quote(expires.column)
    rows = f"{token_column} = %s"
    if renewed is None:  # only the rows of the group
        assignments.append(f"{column} = NULL")
        rows += f" AND {in_group}"
    else:
        assignments.append(f"{column} = CASE WHEN {in_group} THEN NULL ELSE %s END")
        params.append(expires.get_db_prep_save(renewed, connection))
    attempts = quote(meta.get_field("attempts").column)
    assignments.append(f"{attempts} = {attempts} + CASE WHEN {in_group} THEN 1 ELSE 0 END")
    # Only quoted names from the model and integer keys; every value is a parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {rows}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, token])


def _all_equal(values):
    first = values[0]
    return all(value == first for value in values[1:])


def recipient_outcomes(row, refused):
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


def refusal_failure(refused):
    """A ``Failure`` summarising refused recipients (the first one's reply)."""
    recipient, (code, reply) = next(iter(refused.items()))
    failure = failures.classify(smtplib.SMTPResponseException(code, reply))
    text = f"{len(refused)} recipient(s) refused, e.g. {recipient}: {failure.reply}"
    return failures.Failure(failure.category, text[: failures.MAX_REPLY])


# Every local may hold the password, the message or a server reply that echoes it.
