"""Device profiles as data: one TOML file per device model and firmware range."""
