"""Smart plugs and sensors that speak real MQTT to a broker (tests, bench, demo)."""
