"""MQTT services: one broker connection per configured broker, shared by its devices; one
command handler per device."""

from __future__ import annotations

import functools

from drivers.base import Devices, DriverContext
from drivers.mqtt.commander import MqttCommander
from drivers.mqtt.link import BrokerLink
from drivers.mqtt.service import AutoGroup, BrokerService, MqttDevice
from edge_agent.config.model import BrokerConfig, VenueConfig
from edge_agent.supervisor import Liveness, Service


def client_id_for(cfg: VenueConfig, broker: BrokerConfig) -> str:
    # Stable across restarts: the broker keeps our persistent session under this id.
    return broker.client_id or f"beerflow-{cfg.venue.id}-{broker.id}"


def build(ctx: DriverContext, devices: Devices) -> list[Service]:
    by_broker: dict[str, list[MqttDevice]] = {}
    for dev, profile in devices:
        assert dev.broker is not None and profile.mqtt is not None  # checked at config load
        health = ctx.health.register(dev.id, "mqtt")
        by_broker.setdefault(dev.broker, []).append(MqttDevice(dev, profile.mqtt, health))
    autos: dict[str, list[AutoGroup]] = {}
    for b in ctx.config.brokers:
        for spec in b.auto_devices:
            auto = ctx.profiles.get(spec.profile)
            assert auto is not None and auto.mqtt is not None  # checked at config load
            autos.setdefault(b.id, []).append(AutoGroup(spec, auto.mqtt))
            by_broker.setdefault(b.id, [])
    services = []
    for broker_id in sorted(by_broker):
        broker = ctx.config.broker(broker_id)
        assert broker is not None
        svc = BrokerService(
            broker,
            client_id_for(ctx.config, broker),
            by_broker[broker_id],
            ctx.bus,
            ctx.clock,
            ctx.store,
            auto=autos.get(broker_id),
            health=ctx.health,
            added=ctx.added,
        )
        svc.on_added = functools.partial(_add_commander, ctx, svc)
        ctx.shared.setdefault("mqtt", {})[broker_id] = svc
        for d in by_broker[broker_id]:
            ctx.commanders[d.device.id] = MqttCommander(svc, d)
        services.append(
            Service(f"mqtt:{broker_id}", svc.run, restart=True, liveness=_liveness(svc.link))
        )
    return services


def _add_commander(ctx: DriverContext, svc: BrokerService, dev: MqttDevice) -> None:
    ctx.commanders[dev.device.id] = MqttCommander(svc, dev)


def _liveness(link: BrokerLink) -> Liveness:
    # Wedged: messages received and not handled, and none handled for 30 s.
    return Liveness(
        progress=lambda: link.handled,
        busy=lambda: link.received > link.handled,
        stall_after_s=30.0,
    )
