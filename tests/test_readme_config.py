"""The README's venue-config example is a real, valid config (docs that cannot rot)."""

from __future__ import annotations

import os
import re

from edge_agent.config.loader import load_config_text
from edge_agent.staff import hash_pin

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_readme_venue_config_example_loads():
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    section = text[text.index("## The venue config") :]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    toml = example.group(1).replace('"scrypt$16384$8$1$…"', f'"{hash_pin("2468")}"')
    cfg = load_config_text(toml, "README.md")
    transports = {d.profile for d in cfg.devices}
    assert {
        "dixell-xr77u",
        "opc30200-combi-steamer",
        "bthome-v2",
        "shelly-plus-plug-s",
        "keg-scale-mtsics",
    } <= transports
    assert cfg.staff[0].name == "Sam Okafor"
