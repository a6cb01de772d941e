"""The ble driver."""
