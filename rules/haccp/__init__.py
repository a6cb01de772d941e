"""HACCP: region presets, the hash-chained record log, cooling and danger-zone tracking, reports."""
