"""Run a private Mosquitto on loopback (tests, the bench and the demo; never in production).

Gotchas handled here: mosquitto cannot bind port 0, so a free port is picked first; as root it
drops privileges and then cannot write its persistence file, so `user root`; the default
queue of 1000 messages per offline client is raised so store-and-forward bursts survive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(
        self, workdir: str | Path, port: int = 0, tls: tuple[str, str] | None = None
    ) -> None:
        """`tls`: (certificate file, key file) to listen with TLS only."""
        self.dir = Path(workdir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 5.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        tls = f"certfile {self.tls[0]}\nkeyfile {self.tls[1]}\n" if self.tls else ""
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{tls}allow_anonymous true\n"
            f"persistence true\npersistence_location {self.dir}/\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
            "max_queued_messages 1000000\nmax_inflight_messages 100\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        with open(self.dir / "broker.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(conf)], stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: see {self.dir / 'broker.log'}")
            try:
                with socket.create_connection((self.host, self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port}")

    def stop(self) -> None:
        """Terminate (mosquitto saves its persistence file on the way out)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
