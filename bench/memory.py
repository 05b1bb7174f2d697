"""The worker's peak memory while it drains large messages (not part of the test suite).

    make bench-memory                (or: python bench/memory.py [options])
    make bench-memory MEMORY_ARGS="--messages 2000 --postgres"

Queues ``--messages`` messages with an attachment of ``--attachment-kb`` each (in a
process of its own, not measured), then one worker process sends them all to the bench's
local TLS server (``tasks.deliver_outbox``, as django-q2 runs it) and reports its peak
resident memory (``ru_maxrss``), next to what it held before the drain began (Django
and the package imported). The aim: below 150 MB for 10,000 messages of 1 MB.
"""

import argparse
import contextlib
import sys
import tempfile

from bench_send import BENCH_POSTGRES_DB, PASSWORD, USER, Bench, helper

#: The aim of the SPEC (issue 11, point 8), in MB.
AIM_MB = 150


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000, help="messages (10000)")
    parser.add_argument(
        "--attachment-kb", type=int, default=1024, help="attachment of each, in KiB (1024)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=f"PostgreSQL on 127.0.0.1 (database {BENCH_POSTGRES_DB}_ours) instead of SQLite",
    )
    args = parser.parse_args()
    args.peers = ["ours"]
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="icarus-bench-"))
        server = stack.enter_context(helper("smtp_server.py", USER, PASSWORD))
        bench = Bench(args, tmp, server, None)
        bench.setup()
        print(
            f"queueing {args.messages:,} messages with {args.attachment_kb:,} KiB each …",
            file=sys.stderr,
            flush=True,
        )
        bench.run("ours", "fill", args.messages, attachment_kb=args.attachment_kb)
        print("draining …", file=sys.stderr, flush=True)
        result = bench.run("ours", "drain-rss")
    report(args, result)


def report(args, result):
    peak = result["peak_rss_kb"] / 1024
    before = result["rss_before_kb"] / 1024
    rate = result["messages"] / result["seconds"]
    database = "PostgreSQL" if args.postgres else "SQLite (WAL)"
    print(f"{database}: {result['messages']:,} messages of {args.attachment_kb:,} KiB sent")
    print(f"  worker: {result['seconds']:.1f} s, {rate:.0f} msg/s")
    print(f"  worker's resident memory before the drain: {before:.0f} MB")
    met = "met" if peak < AIM_MB else "NOT met"
    print(f"  worker's peak resident memory: {peak:.0f} MB (aim < {AIM_MB} MB: {met})")
    assert result["messages"] == args.messages, "not every message arrived"


if __name__ == "__main__":
    main()
