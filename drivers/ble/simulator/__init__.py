"""BLE simulators: a BlueZ stand-in (python-dbusmock on a private D-Bus), advertising sensors
driven by a seeded model, a GATT logger, and a BlueZoo peripheral."""
