"""The benchmark script still runs, on the suite's kind of database (tiny counts; the
figures are not judged: speed is measured with ``make bench``, not by timed tests)."""

import os
import re
import subprocess
import sys

import pytest

from tests.utils import ROOT

ROW = re.compile(r"^(.+?)\s+(\d+\.\d\d)\s+(\d+\.\d\d)\s+(\d+\.\d\d)x$")


def test_the_benchmark_prints_both_ways_of_sending_and_draining():
    args = ["--messages", "3", "--batch", "20", "--rounds", "1"]
    if os.environ.get("ICARUS_TEST_DB") == "postgres":  # the suite's database kind
        args.append("--postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ICARUS_"))}
    finished = subprocess.run(
        [sys.executable, "bench/bench_send.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    rows = {m.group(1): m.groups()[1:] for m in map(ROW.match, lines) if m}
    assert set(rows) == {"send_mail() loop, new connection each", "20 messages, one connection"}
    for stock, ours, ratio in rows.values():
        assert float(ratio) == pytest.approx(float(ours) / float(stock), abs=0.01)
    assert any(line.startswith("20 held messages, 2 worker(s)") for line in lines)
