"""Fuzz the API from its own OpenAPI schema (schemathesis CLI, bounded): never a server error."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from serving.smoke import wait_ready
from tests.serving.test_app import KEY, Service

pytestmark = [pytest.mark.data, pytest.mark.server]


def test_api_never_returns_a_server_error(trained_data, tmp_path):
    st = Path(sys.executable).with_name("st")
    assert st.exists() or shutil.which("st"), "schemathesis is a dev dependency"
    svc = Service(trained_data)
    try:
        wait_ready(svc.base)
        proc = subprocess.run(
            [str(st), "run", f"{svc.base}/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "40", "--seed", "1", "--workers", "1",
             "-H", f"Authorization: Bearer {KEY}", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
    finally:
        svc.stop()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # every operation of the schema is fuzzed (predict, events, health, ...), none left out
    selected = re.search(r"(\d+) selected / (\d+) total", output)
    assert "No issues found" in output and selected, output[-2000:]
    assert selected.group(1) == selected.group(2) and int(selected.group(1)) >= 6, output[-2000:]
