"""The exception root of the drivers; library errors are translated here with `raise ... from`."""

from typing import ClassVar

from edge_agent.errors import EdgeError


class DriverError(EdgeError):
    pass


class CodecError(DriverError):
    """Bytes or values from a device that do not fit its profile (malformed, short, garbage)."""


class DeviceIOError(DriverError):
    """The device could not be reached or did not answer in time."""


class DeviceRejected(DriverError):
    """The device answered with an error (e.g. a Modbus exception response)."""


class CommandRejected(DriverError):
    """A command failed validation against the profile before anything was sent."""


class ExceptionResponse(DeviceRejected):
    """A Modbus exception response; `code` says why (02 illegal address, 0A/0B gateway)."""

    NAMES: ClassVar[dict[int, str]] = {
        0x01: "illegal function",
        0x02: "illegal data address",
        0x03: "illegal data value",
        0x04: "device failure",
        0x06: "device busy",
        0x0A: "gateway path unavailable",
        0x0B: "gateway target failed to respond",
    }

    def __init__(self, code: int) -> None:
        name = self.NAMES.get(code)
        super().__init__(f"exception response, code {code}" + (f" ({name})" if name else ""))
        self.code = code

    @property
    def from_gateway(self) -> bool:
        """0A/0B come from a gateway in front of the unit: no proof the unit exists."""
        return self.code in (0x0A, 0x0B)
