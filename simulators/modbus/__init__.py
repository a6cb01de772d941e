"""Refrigeration-controller simulators that speak real Modbus TCP on loopback."""
