"""`serving.workers.bind` / `own_listener`: each forked worker listens on its own socket of the one
address, so new connections are spread over the workers by the kernel even while one of them is
busy (on one shared socket, the worker that is awake accepted every pending connection)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from serving.workers import bind, own_listener

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")


def _worker(sock: socket.socket, ready_w: int, go_r: int, counts_w: int, delay: float) -> None:
    """A forked 'worker': its own listener, then (after `delay`) count what it can accept."""
    try:
        own_listener(sock)
        os.write(ready_w, b"r")
        os.read(go_r, 1)
        time.sleep(delay)
        sock.settimeout(0.3)
        accepted = 0
        while True:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                break
            conn.close()
            accepted += 1
        os.write(counts_w, f"{accepted}\n".encode())
    finally:
        os._exit(0)


def test_connections_are_spread_over_the_workers_own_sockets():
    sock = bind("127.0.0.1", 0)
    address = sock.getsockname()
    with pytest.raises(OSError):  # the supervisor's socket holds the address but takes no connection
        socket.create_connection(address, timeout=1).close()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    counts_r, counts_w = os.pipe()
    # the second worker starts accepting late: on a shared socket the first would take all
    pids = [os.fork() or _worker(sock, ready_w, go_r, counts_w, delay) for delay in (0.0, 1.0)]
    for _ in pids:
        os.read(ready_r, 1)
    os.write(go_w, b"gg")
    clients = [socket.create_connection(address, timeout=5) for _ in range(32)]
    for pid in pids:
        os.waitpid(pid, 0)
    counts = sorted(int(line) for line in os.read(counts_r, 100).split())
    for client in clients:
        client.close()
    sock.close()
    assert sum(counts) == 32  # every connection was accepted by one of them
    assert min(counts) > 0, counts  # both workers' own sockets got connections
