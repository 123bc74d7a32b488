"""parity.services: the scale profile's Redis and PostgreSQL, started and stopped for real."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from parity import services

needs_binaries = pytest.mark.skipif(
    shutil.which("redis-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
    reason="redis-server or PostgreSQL (Debian packages redis-server, postgresql) not installed")


@pytest.fixture
def root():
    """A services folder PostgreSQL's own user can reach (pytest's tmp root is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="parity-services-"))
    folder.chmod(0o755)
    yield folder / "services"
    services.down(folder / "services")
    shutil.rmtree(folder, ignore_errors=True)


@needs_binaries
def test_up_is_idempotent_and_down_stops_both_by_pid(root, monkeypatch):
    for name in services.PORT_ENV.values():
        monkeypatch.delenv(name, raising=False)
    first = services.up(root)
    assert services.redis_ping(first["redis"].port) and services.postgres_ready(first["postgres"].port)
    assert services.up(root) == first  # running: left alone, same pids and ports
    state = services.read_state(root)
    assert {n: s["port"] for n, s in state.items()} == {n: e.port for n, e in first.items()}
    import psycopg

    with psycopg.connect(host=services.HOST, port=first["postgres"].port, user=services.DATABASE,
                         dbname=services.DATABASE) as con:
        assert con.execute("select current_database()").fetchone()[0] == services.DATABASE
    assert services.down(root) == {"redis": True, "postgres": True}
    assert not services.pid_alive(first["redis"].pid) and not services.pid_alive(first["postgres"].pid)
    assert services.status(root) == {"redis": "stopped", "postgres": "stopped"}
    assert services.down(root) == {"redis": False, "postgres": False}
    again = services.up(root)  # restarted with the same data folder (initdb not repeated)
    assert services.postgres_ready(again["postgres"].port)


@needs_binaries
def test_a_port_named_in_the_environment_that_is_taken_is_refused(root, monkeypatch):
    with socket.socket() as busy:
        busy.bind((services.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("PARITY_REDIS_PORT", str(port))
        with pytest.raises(services.ServiceError, match=rf"redis: 127.0.0.1:{port} \(PARITY_REDIS_PORT\) is already in use"):
            services.up(root)


def test_a_default_port_that_is_taken_falls_back_to_a_free_one(monkeypatch):
    monkeypatch.delenv("PARITY_REDIS_PORT", raising=False)
    with socket.socket() as busy:
        busy.bind((services.HOST, 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setitem(services.DEFAULT_PORTS, "redis", taken)
        chosen = services.choose_port("redis", None)
    assert chosen != taken and services.port_free(chosen)


def test_postgres_never_runs_as_root_and_a_private_folder_is_named(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        assert services._os_user() is None  # a normal user runs it as itself
        return
    monkeypatch.setenv("PARITY_POSTGRES_OS_USER", "no-such-user-parity")
    with pytest.raises(services.ServiceError, match="refuses to run as root"):
        services._os_user()
    monkeypatch.delenv("PARITY_POSTGRES_OS_USER")
    user = services._os_user()
    private = tmp_path / "private"
    (private / "pg").mkdir(parents=True)
    private.chmod(0o700)
    with pytest.raises(services.ServiceError, match=f"cannot enter {private}"):
        services._as_user(user, private / "pg")
