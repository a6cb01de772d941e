"""Advertisement payload decoders: hand-written ones for formats no maintained parser covers,
and thin adapters over the Bluetooth-Devices parsers for the rest."""
