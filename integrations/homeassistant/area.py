"""The Home Assistant area: the exporter, on a box whose venue config has [home_assistant]."""

from __future__ import annotations

from edge_agent.area import Area, AreaContext


def build(ctx: AreaContext) -> Area:
    if ctx.config.home_assistant is None:
        return Area("home-assistant")
    # Imported only when configured: it brings the MQTT client along.
    from integrations.homeassistant.exporter import build_services

    return Area("home-assistant", services=build_services(ctx))
