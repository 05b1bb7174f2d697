"""Side by side: ours vs Django's stock SMTP backend vs django-post_office vs django-mailer.

    make bench                       (or: python bench/bench_send.py [options])
    make bench BENCH_ARGS="--postgres --rtt 20 --rounds 5"

Every peer sends for real, over STARTTLS + AUTH, to one local aiosmtpd server in a
process of its own (which advertises PIPELINING, as Postfix, Exim, Gmail and Microsoft
365 do), through its own normal path; each peer has a database of its own (SQLite in WAL
mode, or PostgreSQL with ``--postgres``) and runs in processes of its own
(``bench/peer.py``). Rounds are interleaved — peer A, B, C, D, A, B, … — so a change of
load hits every peer alike; printed are the median of the rounds, the min-max, and the
ratios ours/peer of the medians against the aims of the SPEC. SQL statements are counted
with ``connection.execute_wrapper`` in the process that sends.

``--rtt MS`` also measures the drain through a proxy that delays every chunk by MS/2 in
each direction (``bench/rtt_proxy.py``), as a mail server on the internet would.
The peers post_office and django-mailer come with the ``bench`` extra
(``pip install -e ".[bench]"``; ``make bench`` installs it).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BENCH_POSTGRES_DB = "icarus_smtp_bench"
USER, PASSWORD = "system@dropzone.example", "bench-passwort"

ALL_PEERS = ("ours", "stock", "post_office", "mailer")
#: The module each peer needs (the bench extra installs the last two).
PEER_MODULES = {"post_office": "post_office", "mailer": "mailer"}
LABELS = {"ours": "ours", "stock": "stock", "post_office": "post_office", "mailer": "mailer"}


class Measure:
    """One row of the table: a peer.py action, who takes part, and how it reads."""

    def __init__(self, key, label, action, peers, unit, count_option, rtt=False, versus=None):
        self.key, self.label, self.action, self.peers = key, label, action, peers
        self.unit, self.count_option, self.rtt = unit, count_option, rtt
        #: The peers' row that ours is compared with (their own by default).
        self.versus = versus or key

    def value(self, result):
        """ms per message (lower is better) or messages per second (higher)."""
        if self.unit == "msg/s":
            return result["messages"] / result["seconds"]
        if self.unit == "s":
            return result["seconds"]
        return result["seconds"] / result["messages"] * 1000


QUEUES = ("ours", "post_office", "mailer")
MEASURES = [
    Measure("handover", "hand-over of 1 message in a request", "handover", ALL_PEERS, "ms/msg",
            "handovers"),
    Measure("handover_idle", "same, each waking an idle worker", "handover-idle", ("ours",),
            "ms/msg", "handovers", versus="handover"),
    Measure("store", "same, sending off (store only)", "store", QUEUES, "ms/msg", "handovers"),
    Measure("drain", "drain {drain} queued, one worker", "drain", QUEUES, "msg/s", "drain"),
    Measure("drain_rtt", "drain {rtt_drain} queued at {rtt} ms round trip", "drain", QUEUES,
            "msg/s", "rtt_drain", rtt=True),
    Measure("bookings", "{bookings} bookings end to end", "bookings", ALL_PEERS, "s",
            "bookings"),
    Measure("wire", "on the wire after commit, idle worker (median)", "on-the-wire", QUEUES,
            "s", "wire"),
]  # fmt: skip

#: The SPEC's aims: (row, peer, how ours compares, bound).
AIMS = [
    ("handover", "post_office", "time", 1.5),
    ("handover_idle", "post_office", "time", 1.5),
    ("store", "post_office", "time", 1.5),
    ("drain", "post_office", "rate", 2.0),
    ("drain_rtt", "post_office", "rate", 3.0),
    ("bookings", "post_office", "time", 0.8),
]
#: Statements per message (the drain): at most this many for ours.
SQL_AIM = 0.05
#: Seconds from a booking's commit until its mail is on the server (ours, median).
WIRE_AIM = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--peers",
        default=",".join(ALL_PEERS),
        help="comma-separated, from: " + ", ".join(ALL_PEERS) + " (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--handovers", type=int, default=100, help="hand-overs a round (100)")
    parser.add_argument("--drain", type=int, default=1000, help="messages to drain (1000)")
    parser.add_argument("--bookings", type=int, default=500, help="bookings end to end (500)")
    parser.add_argument(
        "--wire",
        type=int,
        default=20,
        help="bookings one at a time, 1.5 s apart, timed until on the wire (20; 0: not)",
    )
    parser.add_argument(
        "--rtt", type=float, default=0, help="also drain at this round trip in ms (0: not)"
    )
    parser.add_argument(
        "--rtt-drain", type=int, default=100, help="messages to drain at --rtt (100)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"PostgreSQL on 127.0.0.1 (databases {BENCH_POSTGRES_DB}_PEER) instead of SQLite",
    )
    args = parser.parse_args(argv)
    args.peers = [peer.strip() for peer in args.peers.split(",") if peer.strip()]
    unknown = set(args.peers) - set(ALL_PEERS)
    if unknown:
        parser.error(f"unknown peers: {', '.join(sorted(unknown))}")
    missing = [p for p in args.peers if p in PEER_MODULES and not module_exists(p)]
    if missing:
        parser.error(
            f"{', '.join(missing)} not installed: pip install -e '.[bench]' (make bench does)"
        )
    return args


def module_exists(peer):
    return importlib.util.find_spec(PEER_MODULES[peer]) is not None


@contextlib.contextmanager
def helper(script, *argv):
    """Run ``bench/SCRIPT`` in its own process; yield its JSON start line."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script), *map(str, argv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def fresh_postgres_database(name):
    """An empty database on the local PostgreSQL (dropped first)."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Bench:
    def __init__(self, args, tmp, server, proxy_port):
        self.args, self.tmp, self.server, self.proxy_port = args, Path(tmp), server, proxy_port
        bundle = self.tmp / "bundle.pem"
        system = SYSTEM_BUNDLE.read_bytes() if SYSTEM_BUNDLE.exists() else b""
        bundle.write_bytes(system + b"\n" + Path(server["ca_file"]).read_bytes())
        self.bundle = bundle

    def env(self, peer, rtt=False):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ICARUS_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            PYTHONPATH=str(ROOT),
            BENCH_PEER=peer,
            BENCH_SMTP_PORT=str(self.proxy_port if rtt else self.server["port"]),
            BENCH_CONTROL_PORT=str(self.server["control_port"]),
            BENCH_CA_FILE=self.server["ca_file"],
            BENCH_SMTP_USER=USER,
            BENCH_SMTP_PASSWORD=PASSWORD,
            BENCH_LOCK_FILE=str(self.tmp / f"{peer}.lock"),
            # Django's SMTP backend trusts the default verify paths: the system store
            # plus the bench's CA, as ours does with ICARUS_SMTP_CA_FILE.
            SSL_CERT_FILE=str(self.bundle),
        )
        if self.args.postgres:
            env.update(ICARUS_TEST_DB="postgres", ICARUS_DB_NAME=f"{BENCH_POSTGRES_DB}_{peer}")
        else:
            env["ICARUS_DB_NAME"] = str(self.tmp / f"{peer}.sqlite3")
        return env

    def run(self, peer, action, count=None, rtt=False, attachment_kb=None):
        argv = [sys.executable, str(HERE / "peer.py"), action]
        if count is not None:
            argv += ["--count", str(count)]
        if attachment_kb is not None:
            argv += ["--attachment-kb", str(attachment_kb)]
        finished = subprocess.run(
            argv, env=self.env(peer, rtt), capture_output=True, text=True, check=False
        )
        if finished.returncode != 0:
            sys.stderr.write(finished.stderr)
            raise SystemExit(f"{peer} {action} failed (exit {finished.returncode})")
        return json.loads(finished.stdout.strip().splitlines()[-1])

    def setup(self):
        for peer in self.args.peers:
            if self.args.postgres:  # stock too: its transaction.atomic() needs one
                fresh_postgres_database(f"{BENCH_POSTGRES_DB}_{peer}")
            self.run(peer, "setup")

    def measures(self):
        return measures(self.args)

    def rounds(self):
        """{measure key: {peer: [result, …]}}, rounds interleaved peer by peer."""
        results = {m.key: {p: [] for p in m.peers if p in self.args.peers} for m in MEASURES}
        for round_number in range(1, self.args.rounds + 1):
            print(f"round {round_number} of {self.args.rounds} …", file=sys.stderr, flush=True)
            for measure in self.measures():
                count = getattr(self.args, measure.count_option)
                for peer in results[measure.key]:
                    result = self.run(peer, measure.action, count, rtt=measure.rtt)
                    results[measure.key][peer].append(result)
                    value = number(measure.value(result))
                    print(
                        f"  {measure.key:<10} {peer:<12} {value:>8} {measure.unit}", file=sys.stderr
                    )
        return results


def measures(args):
    """The rows this run measures (``--rtt``, ``--wire`` 0 leave theirs out)."""
    return [
        m for m in MEASURES if (not m.rtt or args.rtt > 0) and (m.key != "wire" or args.wire > 0)
    ]


def label(measure, args):
    return measure.label.format(
        drain=f"{args.drain:,}",
        rtt_drain=f"{args.rtt_drain:,}",
        rtt=f"{args.rtt:g}",
        bookings=f"{args.bookings:,}",
    )


def number(value):
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def report(args, results):
    """Print the medians with min-max, SQL per message, then the ratios and aims."""
    peers = args.peers
    rows = measures(args)
    database = "PostgreSQL" if args.postgres else "SQLite (WAL)"
    print(f"\n{database}, {args.rounds} interleaved rounds; median [min-max]")
    print(f"{'measure':<46} {'unit':<7}" + "".join(f" {LABELS[p]:>21}" for p in peers))
    medians = {}
    for measure in rows:
        cells, sql = [], []
        for peer in peers:
            runs = results[measure.key].get(peer)
            if not runs:
                cells.append(f"{'—':>21}")
                sql.append(f"{'':>21}")
                continue
            values = [measure.value(run) for run in runs]
            median = statistics.median(values)
            medians[measure.key, peer] = median
            span = f"{number(median)} [{number(min(values))}-{number(max(values))}]"
            cells.append(f" {span:>21}")
            if "statements" in runs[0]:
                per = statistics.median(r["statements"] / r["messages"] for r in runs)
                medians[measure.key, peer, "sql"] = per
                sql.append(f" {per:>21.3g}")
            else:
                sql.append(f"{'':>21}")
        print(f"{label(measure, args):<46} {measure.unit:<7}" + "".join(cells))
        if any(cell.strip() for cell in sql):
            print(f"{'  SQL statements per message':<46} {'':<7}" + "".join(sql))
        if measure.key == "bookings":  # where the time goes: bookings, then the wait
            booked = [
                number(statistics.median(r["booked"] for r in results[measure.key][p]))
                if results[measure.key].get(p)
                else "—"
                for p in peers
            ]
            print(f"{'  of which the bookings themselves':<46} {'s':<7}"
                  + "".join(f" {b:>21}" for b in booked))  # fmt: skip
        if measure.key == "handover":  # "no SMTP in the request": what the server saw
            seen = [max(r["smtp_in_request"] for r in results[measure.key][p]) for p in peers]
            print(f"{'  messages on the server during the requests':<46} {'':<7}"
                  + "".join(f" {n:>21}" for n in seen))  # fmt: skip
        if measure.key == "wire":  # every booking of every round, not the rounds' medians
            spans = [every_booking(results["wire"].get(peer)) for peer in peers]
            print(f"{'  every booking: median [min-max]':<46} {'':<7}"
                  + "".join(f" {span:>21}" for span in spans))  # fmt: skip

    others = [p for p in peers if p != "ours"]
    if "ours" not in peers or not others:
        return
    print("\nratios ours / peer (of the medians; for msg/s: ours ÷ peer, higher is better)")
    print(f"{'measure':<46}" + "".join(f" {'vs ' + LABELS[p]:>15}" for p in others) + "   aim")
    for measure in rows:
        cells = []
        for peer in others:
            ours = medians.get((measure.key, "ours"))
            theirs = medians.get((measure.versus, peer))
            cells.append(f" {ours / theirs:>14.2f}x" if ours and theirs else f" {'—':>15}")
        aim = aim_text(measure, medians)
        print(f"{label(measure, args):<46}" + "".join(cells) + f"   {aim}")
    if ("drain", "ours", "sql") in medians:
        per = medians["drain", "ours", "sql"]
        met = "met" if per <= SQL_AIM else "NOT met"
        print(f"{'SQL statements per message, drain (ours)':<46} {per:>15.3g}   "
              f"≤ {SQL_AIM}: {met}")  # fmt: skip
    if ("wire", "ours") in medians:
        wire = medians["wire", "ours"]
        met = "met" if wire <= WIRE_AIM else "NOT met"
        print(f"{'on the wire after commit, s (ours, median)':<46} {wire:>15.3g}   "
              f"≤ {WIRE_AIM:g} s: {met}")  # fmt: skip


def every_booking(runs):
    """Median [min-max] of the latencies of all bookings of ``runs``."""
    if not runs:
        return "—"
    latencies = [latency for run in runs for latency in run["latencies"]]
    median, low, high = statistics.median(latencies), min(latencies), max(latencies)
    return f"{number(median)} [{number(low)}-{number(high)}]"


def aim_text(measure, medians):
    for key, peer, kind, bound in AIMS:
        if key != measure.key:
            continue
        ours, theirs = medians.get((key, "ours")), medians.get((measure.versus, peer))
        sign = "≤" if kind == "time" else "≥"
        aim = f"{sign} {bound:g}x {peer}"
        if not (ours and theirs):
            return aim
        met = ours / theirs <= bound if kind == "time" else ours / theirs >= bound
        return f"{aim}: {'met' if met else 'NOT met'}"
    return ""


def main(argv=None):
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="icarus-bench-"))
        server = stack.enter_context(helper("smtp_server.py", USER, PASSWORD))
        proxy_port = None
        if args.rtt > 0:
            proxy_port = stack.enter_context(helper("rtt_proxy.py", server["port"], args.rtt))[
                "port"
            ]
        bench = Bench(args, tmp, server, proxy_port)
        bench.setup()
        report(args, bench.rounds())


if __name__ == "__main__":
    main()
