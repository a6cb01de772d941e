"""BLE simulators: a BlueZ stand-in (python-dbusmock on a private D-Bus), advertising sensors
driven by a seeded model, a GATT logger, a peripheral written against the real BlueZ
peripheral API (for BlueZoo), and the demo venue's BLE part."""

from simulators.ble.demo import demo_part

__all__ = ["demo_part"]
