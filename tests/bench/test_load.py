"""The load client's CPU accounting (bench/load.py): /proc counters and the two-core bound."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.load import cpu_bound_ratio, process_cpu_seconds


def test_process_cpu_seconds_counts_a_busy_process_and_skips_a_gone_one():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.3: pass"])
    busy.wait(timeout=60)
    assert process_cpu_seconds([busy.pid]) == 0.0  # reaped: no /proc entry, counts nothing
    before = process_cpu_seconds([os.getpid()])
    started = time.process_time()
    while time.process_time() - started < 0.2:
        pass
    assert process_cpu_seconds([os.getpid()]) - before >= 0.15


@pytest.mark.parametrize(("server", "client", "expected"), [(1.0, 0.0, 2.0), (1.0, 1.0, 1.0), (0.9, 0.1, 1.8)])
def test_cpu_bound_ratio(server, client, expected):
    assert cpu_bound_ratio(server, client) == pytest.approx(expected)
