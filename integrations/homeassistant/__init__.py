"""Home Assistant export: every point of the venue as an entity, through MQTT discovery.

`discovery` is the pure codec (config and state payloads); `exporter` is the service that
publishes them to the configured broker."""
