"""Starts one real `duet serve` process on free loopback ports for the Python
client tests (the binary comes from DUET_BIN or the cargo target dir)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def duet_binary():
    if os.environ.get("DUET_BIN"):
        return os.environ["DUET_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "target"))
    return os.path.join(target, "debug", "duet")


class Duet:
    def __init__(self, mysql_port, status_port, proc):
        self.host = "127.0.0.1"
        self.port = mysql_port
        self.status_port = status_port
        self.proc = proc


@pytest.fixture(scope="session")
def duet():
    data = tempfile.mkdtemp(prefix="duet-pytest-")
    config = os.path.join(data, "duet.toml")
    with open(config, "w") as f:
        f.write('[[users]]\nname = "root"\nhost = "localhost"\n\n'
                '[[users]]\nname = "app"\npassword = "s3cret"\nhost = "%"\n')
    mysql_port, status_port = free_port(), free_port()
    proc = subprocess.Popen(
        [duet_binary(), "serve", "--config", config, "--data-dir", os.path.join(data, "data"),
         "--mysql-addr", f"127.0.0.1:{mysql_port}", "--status-addr", f"127.0.0.1:{status_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{status_port}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, "duet exited during start-up"
        assert time.time() < deadline, "duet did not become healthy"
        time.sleep(0.1)
    yield Duet(mysql_port, status_port, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, "duet exits 0 on SIGTERM"
    shutil.rmtree(data, ignore_errors=True)
