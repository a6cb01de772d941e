"""The I/O seam of the serial driver: one open serial port, read as CRLF-terminated lines.

pyserial opens and configures the port (termios: baud rate, parity, exclusivity); after that
the file descriptor is non-blocking and watched by the event loop, so no thread waits on a
port. Timeouts use the injected clock, so tests decide when a silent scale has timed out.
A vanished USB adapter shows up as an OS error on read or write, and as a missing path on
reopen; both become DeviceIOError here, so nothing above this module knows pyserial exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from dataclasses import dataclass

from drivers.errors import CodecError, DeviceIOError
from edge_agent.clock import Clock

EOL = b"\r\n"


@dataclass(frozen=True, slots=True)
class PortSettings:
    port: str
    baudrate: int = 9600
    parity: str = "N"
    stopbits: float = 1
    bytesize: int = 8
    exclusive: bool = True


class SerialLine:
    """A serial port as a line transport: `write_line`, `read_line(timeout)`, `close`."""

    def __init__(self, settings: PortSettings, clock: Clock, max_line: int = 256) -> None:
        self.settings = settings
        self._clock = clock
        self._max_line = max_line
        self._serial: object | None = None
        self._fd: int | None = None
        self._buf = bytearray()
        self._lines: asyncio.Queue[bytes] = asyncio.Queue()
        self._lost: BaseException | None = None
        self._overlong = False
        self._changed = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._fd is not None and self._lost is None

    def open(self) -> None:
        import serial  # type: ignore[import-untyped]

        s = self.settings
        try:
            ser = serial.Serial(
                s.port,
                s.baudrate,
                bytesize=s.bytesize,
                parity=s.parity,
                stopbits=s.stopbits,
                timeout=0,
                exclusive=s.exclusive,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceIOError(f"cannot open {s.port}: {exc}") from exc
        self._serial = ser
        self._fd = ser.fileno()
        self._buf.clear()
        self._lines = asyncio.Queue()
        self._lost = None
        self._overlong = False
        asyncio.get_running_loop().add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(exc)
            return
        if not data:  # end of file: the other side of the line is gone
            self._lose(OSError(errno.EIO, "end of file on serial port"))
            return
        self._buf += data
        while (end := self._buf.find(EOL)) >= 0:
            line = bytes(self._buf[:end])
            del self._buf[: end + len(EOL)]
            if self._overlong:
                self._overlong = False  # the tail of a discarded runaway line
                continue
            self._lines.put_nowait(line)
        if len(self._buf) > self._max_line:
            # Garbage with no line end: drop it and the rest of that line, report it once.
            self._buf.clear()
            self._overlong = True
            self._lines.put_nowait(b"\x00overlong")
        self._changed.set()

    def _lose(self, exc: BaseException) -> None:
        self._lost = exc
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
        self._changed.set()

    def discard_input(self) -> None:
        """Forget lines nobody asked for (late replies to a timed-out request)."""
        while not self._lines.empty():
            self._lines.get_nowait()

    def write_line(self, data: bytes) -> None:
        if self._fd is None or self._lost is not None:
            raise DeviceIOError(f"{self.settings.port} is not open")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except BlockingIOError as exc:
            raise DeviceIOError(f"{self.settings.port}: output buffer full") from exc
        except OSError as exc:
            self._lose(exc)
            raise DeviceIOError(f"{self.settings.port}: write failed: {exc}") from exc

    async def read_line(self, timeout_s: float | None) -> bytes:
        """The next line (without CRLF); DeviceIOError when the port is lost or on timeout
        (None waits for ever), CodecError for a runaway line that never ended."""
        if not self._lines.empty():
            return self._checked(self._lines.get_nowait())
        get = asyncio.ensure_future(self._lines.get())
        timer = asyncio.ensure_future(
            self._clock.sleep(timeout_s) if timeout_s is not None else asyncio.Event().wait()
        )
        lost = asyncio.ensure_future(self._wait_lost())
        try:
            await asyncio.wait({get, timer, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (timer, lost):
                f.cancel()
            if not get.done():
                get.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(timer, lost, return_exceptions=True)
        if get.done() and not get.cancelled():
            return self._checked(get.result())
        if self._lost is not None:
            raise DeviceIOError(f"{self.settings.port}: {self._lost}")
        raise DeviceIOError(f"no reply within {timeout_s} s")

    async def _wait_lost(self) -> None:
        while self._lost is None:
            self._changed.clear()
            await self._changed.wait()

    @staticmethod
    def _checked(line: bytes) -> bytes:
        if line == b"\x00overlong":
            raise CodecError("line too long without CRLF (garbage on the line?)")
        return line

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(self._fd)
        if self._serial is not None:
            with contextlib.suppress(OSError):
                self._serial.close()  # type: ignore[attr-defined]
        self._serial = None
        self._fd = None
