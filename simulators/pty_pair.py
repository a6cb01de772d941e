"""Two pseudo-terminals joined by `socat`, at stable paths: a serial line for simulators.

The host end is what a driver opens (as it would /dev/ttyUSB0); the device end is where the
simulated scale or the RS-485 slaves answer. Stopping the pair removes both paths, exactly like
unplugging a USB serial adapter removes its device node; starting it again brings the same
paths back (on new ptys). A pty does not pace bytes at the baud rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile


class PtyPair:
    def __init__(
        self, directory: str | None = None, name: str = "line", *, device_name: str | None = None
    ) -> None:
        self._own_dir = directory is None
        self.dir = os.path.abspath(directory or tempfile.mkdtemp(prefix="beerflow-pty-"))
        self.host_path = os.path.join(self.dir, f"{name}-host")
        self.device_path = os.path.join(self.dir, device_name or f"{name}-device")
        self._proc: asyncio.subprocess.Process | None = None

    def _linked(self) -> bool:
        return os.path.exists(self.host_path) and os.path.exists(self.device_path)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (apt-get install socat)")
        self._proc = await asyncio.create_subprocess_exec(
            socat,
            f"pty,raw,echo=0,link={self.device_path}",
            f"pty,raw,echo=0,link={self.host_path}",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while not self._linked():
            if loop.time() > deadline or self._proc.returncode is not None:
                await self.stop()
                raise RuntimeError("socat did not create the pty pair")
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for path in (self.host_path, self.device_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
