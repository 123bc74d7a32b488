"""The scale profile's local services: Redis (online store) and PostgreSQL (Feast SQL registry).

`python -m parity.services up|down|status` (``make services-up`` / ``services-down``) starts and
stops Debian's ``redis-server`` and PostgreSQL (``initdb`` + ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin``) on 127.0.0.1 only, with their data under
``<data dir>/services/`` and the ports they listen on recorded in ``services/services.json``
(read by `parity.config.Settings.service_endpoints`). Idempotent: a service already running from
that folder is left alone; a stopped one is started again with its data. Stopped by PID (the
pid file each server writes), never by name.

PostgreSQL refuses to run as root: when this runs as root the cluster is created and run as the
``postgres`` system user (``PARITY_POSTGRES_OS_USER``), which must be able to reach the data
folder (every parent directory searchable by others). Authentication is ``trust`` on loopback
only: a local development set-up, not a deployment (README "Scale-out profile").

Ports: ``PARITY_REDIS_PORT`` / ``PARITY_POSTGRES_PORT`` when set (refused if taken), else the
defaults below when free, else a free port chosen by the OS.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORTS = {"redis": 6390, "postgres": 54330}
PORT_ENV = {"redis": "PARITY_REDIS_PORT", "postgres": "PARITY_POSTGRES_PORT"}
DATABASE = "parity"  # the registry's database and role (a superuser of this local cluster only)
STATE_NAME = "services.json"
START_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    """A service cannot be started, reached or stopped; the message names it and the fix."""


@dataclass(frozen=True)
class Endpoint:
    """A running service: its port and the PID of its server process."""

    name: str
    port: int
    pid: int


def state_path(root: Path) -> Path:
    return root / STATE_NAME


def read_state(root: Path) -> dict[str, dict[str, int]]:
    """The recorded ports (and pids) of the services under `root` ({} when never started)."""
    try:
        return json.loads(state_path(root).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ServiceError(f"{state_path(root)}: unreadable ({err}); delete it and run `make services-up`") from err


def _write_state(root: Path, state: dict[str, dict[str, int]]) -> None:
    tmp = state_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, state_path(root))


def port_free(port: int) -> bool:
    """Whether nothing listens on HOST:port (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(name: str, recorded: int | None) -> int:
    """The port for a service: its env var (must be free), else the recorded or default one when
    free, else one the OS picks."""
    wanted = os.environ.get(PORT_ENV[name])
    if wanted:
        if not wanted.isdigit() or not 0 < int(wanted) < 65536:
            raise ServiceError(f"{PORT_ENV[name]}={wanted!r} is not a TCP port")
        if not port_free(int(wanted)):
            raise ServiceError(f"{name}: {HOST}:{wanted} ({PORT_ENV[name]}) is already in use by another "
                               "process: choose a free port")
        return int(wanted)
    for candidate in (recorded, DEFAULT_PORTS[name]):
        if candidate and port_free(candidate):
            return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs (an exited, not yet reaped one does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def _wait(check, what: str, log: Path | None, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    tail = ""
    if log is not None and log.exists():
        tail = "\n  " + "\n  ".join(log.read_text(errors="replace").splitlines()[-8:])
    raise ServiceError(f"{what} within {timeout:.0f} s (log {log}){tail}")


def stop_pid(pid: int, name: str, sig: int = signal.SIGTERM, timeout: float = START_TIMEOUT) -> None:
    """Signal one process by PID and wait until it is gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    _wait(lambda: not pid_alive(pid), f"{name} (pid {pid}) did not stop", None, timeout)


def _zombie(pid: int) -> bool:
    """Whether the process exited but was not reaped yet (reaped here when it is our child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True


# --------------------------------------------------------------------------------------------
# Redis


def redis_ping(port: int) -> bool:
    """Whether a Redis server answers PING on HOST:port."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_up(root: Path, recorded: int | None = None) -> Endpoint:
    """Start redis-server on loopback with its data under root/redis (no-op when running)."""
    folder = root / "redis"
    pidfile = folder / "redis.pid"
    pid = _read_pid(pidfile)
    if pid and pid_alive(pid) and recorded and redis_ping(recorded):
        return Endpoint("redis", recorded, pid)
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server not found: install Debian's `redis-server` package")
    folder.mkdir(parents=True, exist_ok=True)
    pidfile.unlink(missing_ok=True)
    port = choose_port("redis", recorded)
    log = folder / "redis.log"
    # snapshots (dump.rdb) keep the materialized features across a restart
    subprocess.run([binary, "--bind", HOST, "--port", str(port), "--protected-mode", "yes",
                    "--dir", str(folder), "--daemonize", "yes", "--pidfile", str(pidfile),
                    "--logfile", str(log), "--save", "300 1"], check=True, stdout=subprocess.DEVNULL)
    _wait(lambda: redis_ping(port) and _read_pid(pidfile) is not None, f"redis-server did not answer on port {port}", log)
    return Endpoint("redis", port, _read_pid(pidfile) or 0)


def redis_down(root: Path) -> bool:
    """Stop the Redis started from root (SIGTERM: it saves its snapshot and exits)."""
    pid = _read_pid(root / "redis" / "redis.pid")
    if not pid or not pid_alive(pid):
        return False
    stop_pid(pid, "redis-server")
    return True


# --------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL bin folder (PARITY_POSTGRES_BIN overrides)."""
    chosen = os.environ.get("PARITY_POSTGRES_BIN")
    if chosen:
        folders = [Path(chosen)]
    else:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                       key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
        folders = [found[-1].parent] if found else []
    if not folders or not (folders[0] / "pg_ctl").exists():
        raise ServiceError("PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: "
                           "install Debian's `postgresql` package or set PARITY_POSTGRES_BIN")
    return folders[0]


def _os_user() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("PARITY_POSTGRES_OS_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError as err:
        raise ServiceError(f"PostgreSQL refuses to run as root and there is no user {name!r} to run it as: "
                           "run as a normal user or set PARITY_POSTGRES_OS_USER") from err


def _as_user(user: pwd.struct_passwd | None, folder: Path) -> dict:
    """subprocess arguments that run a command as `user` (and hand `folder` to it)."""
    if user is None:
        return {}
    for path in folder.parents:
        if path.stat().st_mode & 0o001 == 0 and path.stat().st_uid != user.pw_uid:
            raise ServiceError(f"PostgreSQL runs as {user.pw_name!r} (not as root) but cannot enter {path}: "
                               f"`chmod o+x {path}` or put PARITY_DATA_DIR elsewhere")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return {"preexec_fn": demote, "env": {**os.environ, "HOME": user.pw_dir, "USER": user.pw_name}}


def _run(cmd: list[str], what: str, **kwargs) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise ServiceError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")


def postgres_ready(port: int) -> bool:
    """Whether PostgreSQL accepts a connection to the registry database on HOST:port."""
    try:
        import psycopg
    except ImportError as exc:  # a missing driver is not "not ready yet": say what to install
        raise ServiceError("PostgreSQL check needs the psycopg package: "
                           "pip install -e '.[dev]' (or '.[scale]')") from exc
    try:
        with psycopg.connect(host=HOST, port=port, user=DATABASE, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def postgres_up(root: Path, recorded: int | None = None) -> Endpoint:
    """initdb (first time) and start PostgreSQL on loopback with data under root/postgres."""
    folder = root / "postgres"
    data = folder / "data"
    pid = _read_pid(data / "postmaster.pid")
    if pid and pid_alive(pid) and recorded and postgres_ready(recorded):
        _create_database(recorded)
        return Endpoint("postgres", recorded, pid)
    binaries = postgres_bin()
    user = _os_user()
    folder.mkdir(parents=True, exist_ok=True)
    run_as = _as_user(user, folder)
    if not (data / "PG_VERSION").exists():
        _run([str(binaries / "initdb"), "-D", str(data), "-U", DATABASE, "--auth=trust", "-E", "UTF8",
              "--no-locale", "--no-instructions"], "initdb", **run_as)
    port = choose_port("postgres", recorded)
    log = folder / "postgres.log"
    # loopback only, no unix socket (its default folder is the system's, which we do not own)
    options = f"-c listen_addresses={HOST} -p {port} -c unix_socket_directories=''"
    _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
         f"pg_ctl start (log {log})", **run_as)
    _wait(lambda: postgres_ready(port), f"PostgreSQL did not accept connections on port {port}", log)
    _create_database(port)
    return Endpoint("postgres", port, _read_pid(data / "postmaster.pid") or 0)


def _create_database(port: int) -> None:
    import psycopg

    with psycopg.connect(host=HOST, port=port, user=DATABASE, dbname="postgres", autocommit=True) as con:
        if not con.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
            con.execute(f'create database "{DATABASE}"')


def postgres_down(root: Path) -> bool:
    """Stop the PostgreSQL started from root by its postmaster PID (SIGINT: fast shutdown)."""
    pid = _read_pid(root / "postgres" / "data" / "postmaster.pid")
    if not pid or not pid_alive(pid):
        return False
    stop_pid(pid, "PostgreSQL", signal.SIGINT)
    return True


# --------------------------------------------------------------------------------------------
# all services


def up(root: Path) -> dict[str, Endpoint]:
    """Start (or keep) Redis and PostgreSQL under `root`; record their ports."""
    root.mkdir(parents=True, exist_ok=True)
    state = read_state(root)
    started = {}
    for name, start in (("redis", redis_up), ("postgres", postgres_up)):
        endpoint = start(root, (state.get(name) or {}).get("port"))
        started[name] = endpoint
        state[name] = {"port": endpoint.port, "pid": endpoint.pid}
        _write_state(root, state)
    return started


def down(root: Path) -> dict[str, bool]:
    """Stop the services started under `root` (by PID); the data and recorded ports stay."""
    return {"redis": redis_down(root), "postgres": postgres_down(root)}


def status(root: Path) -> dict[str, str]:
    """Per service: 'running on port N (pid P)' or 'stopped'."""
    state = read_state(root)
    out = {}
    for name, ready in (("redis", redis_ping), ("postgres", postgres_ready)):
        port = (state.get(name) or {}).get("port")
        out[name] = f"running on {HOST}:{port}" if port and ready(port) else "stopped"
    return out


def main(argv: list[str] | None = None) -> int:
    from parity.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m parity.services", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "status"),
                        help="up: start Redis and PostgreSQL (idempotent); down: stop them by PID; status")
    args = parser.parse_args(argv)
    root = load_settings().services_dir
    try:
        if args.action == "up":
            for name, endpoint in up(root).items():
                print(f"{name}: running on {HOST}:{endpoint.port} (pid {endpoint.pid}), data in {root / name}")
        elif args.action == "down":
            for name, stopped in down(root).items():
                print(f"{name}: {'stopped' if stopped else 'was not running'}")
        else:
            for name, text in status(root).items():
                print(f"{name}: {text}")
    except ServiceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
