"""The exception root of the drivers; library errors are translated here with `raise ... from`."""

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
