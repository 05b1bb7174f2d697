"""The benchmark still runs, on the suite's kind of database (tiny counts; the figures
are not judged: speed is measured with ``make bench``, not by timed tests). Only the
peers of the test extra run here (ours and Django's stock backend): post_office and
django-mailer come with the ``bench`` extra."""

import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time

import pytest

from tests.utils import ROOT

CELL = r"\s+(\d[\d.]*) \[(\d[\d.]*)-(\d[\d.]*)\]"
ROW = re.compile(rf"^(.+?)\s+(ms/msg|msg/s|s)\s{CELL}(?:{CELL}|\s+—)$")
RATIO = re.compile(r"^(.+?)\s+(\d+\.\d\d)x\s")


def run_bench(*args, script="bench/bench_send.py"):
    if os.environ.get("ICARUS_TEST_DB") == "postgres":  # the suite's database kind
        args = (*args, "--postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ICARUS_"))}
    finished = subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.splitlines()


def test_the_bench_prints_each_measure_for_ours_and_stock_with_their_ratios():
    lines = run_bench(
        *("--peers", "ours,stock", "--rounds", "1", "--handovers", "3"),
        *("--drain", "12", "--bookings", "3", "--wire", "2"),
    )
    rows = {m.group(1): m.groups()[1:] for m in map(ROW.match, lines) if m}
    assert list(rows) == [
        "hand-over of 1 message in a request",
        "same, each waking an idle worker",
        "same, sending off (store only)",
        "drain 12 queued, one worker",
        "3 bookings end to end",
        "on the wire after commit, idle worker (median)",
    ]
    # Each booking timed from its commit until the server had it, the worker running.
    wire = rows["on the wire after commit, idle worker (median)"]
    assert wire[0] == "s" and float(wire[1]) > 0 and wire[4] is None
    aim = next(line for line in lines if line.startswith("on the wire after commit, s"))
    assert re.search(r"≤ 1 s: (met|NOT met)$", aim)
    handover = rows["hand-over of 1 message in a request"]
    assert handover[0] == "ms/msg" and handover[4] is not None  # stock measured too
    assert rows["drain 12 queued, one worker"][4] is None  # stock has no queue: "—"
    # No SMTP in the request for ours; the stock backend sends every message in it.
    seen = next(line for line in lines if "messages on the server during the requests" in line)
    assert seen.split()[-2:] == ["0", "3"]
    ratios = {m.group(1): float(m.group(2)) for m in map(RATIO.match, lines) if m}
    for label in ("hand-over of 1 message in a request", "3 bookings end to end"):
        ours, stock = float(rows[label][1]), float(rows[label][4])
        assert ratios[label] == pytest.approx(ours / stock, rel=0.02, abs=0.01)


def test_the_round_trip_proxy_delays_each_exchange_and_keeps_tls_verified():
    user, password = "system@dropzone.example", "bench-passwort"
    server = subprocess.Popen(
        [sys.executable, "bench/smtp_server.py", user, password],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    started = json.loads(server.stdout.readline())
    proxy = subprocess.Popen(
        [sys.executable, "bench/rtt_proxy.py", str(started["port"]), "200"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = json.loads(proxy.stdout.readline())["port"]
        context = ssl.create_default_context(cafile=started["ca_file"])
        with smtplib.SMTP("localhost", port, timeout=10) as client:
            client.starttls(context=context)  # the certificate for localhost still verifies
            client.login(user, password)
            assert client.has_extn("pipelining")  # as Postfix, Exim, Gmail, Microsoft 365
            assert client.has_extn("chunking")  # BDAT, as those do too
            begun = time.monotonic()
            assert client.noop()[0] == 250
            assert time.monotonic() - begun >= 0.2  # one round trip
            client.sendmail(user, ["kunde@example.com"], b"Subject: x\r\n\r\nHallo\r\n")
        with socket.create_connection(("127.0.0.1", started["control_port"])) as control:
            assert control.makefile().readline() == "1\n"  # the bench server counted it
    finally:
        for process in (proxy, server):
            process.stdin.close()
            process.wait(timeout=30)


def test_the_memory_bench_reports_the_workers_peak_memory():
    lines = run_bench("--messages", "3", "--attachment-kb", "64", script="bench/memory.py")
    assert lines[0].endswith(": 3 messages of 64 KiB sent")
    peak = next(line for line in lines if "worker's peak resident memory" in line)
    assert re.search(r": \d+ MB \(aim < 150 MB: (met|NOT met)\)$", peak)
