"""The per-message write: the outcome of each message, recorded as soon as the server
answered (so a killed worker causes at most one duplicate), and the attempts."""

import dataclasses
import random
import smtplib
from datetime import timedelta

from django.db import connections, router
from django.utils import timezone

from .. import conf
from ..models import DeliveryAttempt, OutboxMessage
from ..models.outbox import DEFERRED, FAILED, QUEUED, SENT
from ..smtp import failures


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
    """Records the outcome of each claimed row as soon as it is known."""

    def __init__(self, rows, token, via=""):
        self.rows = rows
        self.token = token
        self.via = via
        self.attempts = []
        self.result = Result()

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
