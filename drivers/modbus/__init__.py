"""Modbus TCP and RTU: a pure register codec, a pymodbus backend, one coordinator per device."""
