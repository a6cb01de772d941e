"""The serial driver."""
