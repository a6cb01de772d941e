"""The opcua driver."""
