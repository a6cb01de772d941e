"""The Home Assistant exporter: announces every point once connected (and again whenever Home
Assistant says it came back online), then publishes each point's latest value, at most once per
``min_interval_s``, plus each device's availability.

It reads the bus with a drop-oldest subscription: a slow or absent broker costs Home Assistant
some intermediate values, never the store or the rules any back-pressure. Configs, states and
availability are retained, so Home Assistant has them right after its own restart; the box's
will marks everything unavailable if the box vanishes.
"""

from __future__ import annotations

import asyncio
import logging

from drivers.errors import DeviceIOError
from drivers.mqtt.link import BrokerLink, Inbound
from edge_agent.area import AreaContext
from edge_agent.bus import Overflow
from edge_agent.messages import Reading
from edge_agent.supervisor import Liveness, Service
from integrations.homeassistant import discovery as d

log = logging.getLogger(__name__)
QUEUE = 10_000


class HomeAssistantExporter:
    def __init__(self, ctx: AreaContext) -> None:
        cfg = ctx.config
        settings = cfg.home_assistant
        assert settings is not None  # only built when the section is present
        broker = cfg.broker(settings.broker)
        assert broker is not None  # the config loader checks the reference
        self.settings = settings
        self.venue = cfg.venue
        self.clock = ctx.clock
        self.health = ctx.health
        self.box = d.box_device(settings, cfg.venue, cfg.venue.id)
        self.entities: dict[tuple[str, str], d.Entity] = {}
        for dev in cfg.devices:
            profile = ctx.library.get(dev.profile)
            if profile is None or not dev.enabled:
                continue
            for e in d.device_entities(
                settings,
                cfg.venue,
                cfg.venue.id,
                dev,
                profile.vendor,
                profile.model,
                profile.points,
            ):
                self.entities[(e.device_id, e.point)] = e
        self.devices = sorted({e.device_id for e in self.entities.values()})
        self.sub = ctx.bus.subscribe("home-assistant", (Reading,), QUEUE, Overflow.DROP_OLDEST)
        self.latest: dict[tuple[str, str], str] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.availability: dict[str, str] = {}
        self.published = 0
        self.consumed = 0  # readings taken off the bus: the service's progress
        self.announcements = 0
        self._wake = asyncio.Event()
        self._announce = asyncio.Event()
        self.link = BrokerLink(
            broker,
            # Never the drivers' client id on the same broker: the broker would drop one of us.
            d.safe_id(broker.client_id or "beerflow", "ha", cfg.venue.id),
            ctx.clock,
            on_batch=self._inbound,
            on_down=self._down,
            on_up=self._announce.set,
            rng_seed="home-assistant",
            will=(d.box_availability_topic(settings, cfg.venue.id), d.OFFLINE),
        )
        self.link.subscriptions[d.birth_topic(settings)] = 1

    # ---- tasks ----------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.link.run(), name="home-assistant:link")
            tg.create_task(self._consume(), name="home-assistant:readings")
            tg.create_task(self._publisher(), name="home-assistant:publish")

    async def stop(self) -> None:
        """Say goodbye (retained "offline"), so Home Assistant does not wait for the will."""
        if self.link.connected:
            try:
                fut = self.link.publish(
                    d.box_availability_topic(self.settings, self.venue.id), d.OFFLINE, 1, True
                )
                await asyncio.wait_for(fut, 1.0)
            except (DeviceIOError, TimeoutError):
                pass

    async def _consume(self) -> None:
        entities = self.entities
        while True:
            batch = await self.sub.channel.get_batch(1000)
            self.consumed += len(batch)
            for r in batch:
                key = (r.device_id, r.point)
                e = entities.get(key)
                if e is None:
                    continue
                self.latest[key] = d.state_payload(e.component, r.value)
                self.dirty.add(key)
            self._wake.set()

    async def _publisher(self) -> None:
        while True:
            if self._announce.is_set() and self.link.connected:
                self._announce.clear()
                await self._publish_all()
            elif self.link.connected:
                await self._publish_changes()
            waits = [
                asyncio.create_task(self._wake.wait()),
                asyncio.create_task(self._announce.wait()),
            ]
            try:
                await asyncio.wait(
                    waits,
                    timeout=max(self.settings.min_interval_s, 1.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for w in waits:
                    w.cancel()
            self._wake.clear()
            if self.settings.min_interval_s:
                await self.clock.sleep(self.settings.min_interval_s)

    # ---- publishing -------------------------------------------------------------------------

    def _send(self, topic: str, payload: str) -> asyncio.Future[None]:
        self.published += 1
        return self.link.publish(topic, payload, 1, True)

    async def _publish_all(self) -> None:
        """Every config, then availability and every known state (after a (re)connect or
        Home Assistant's birth message)."""
        import json

        try:
            futs = [self._send(self.box.config_topic, json.dumps(self.box.config))]
            futs += [
                self._send(e.config_topic, json.dumps(e.config)) for e in self.entities.values()
            ]
            futs.append(
                self._send(d.box_availability_topic(self.settings, self.venue.id), d.ONLINE)
            )
            self.availability.clear()
            futs += self._availability_changes()
            futs += [self._send(self.entities[k].state_topic, v) for k, v in self.latest.items()]
            self.dirty.clear()
            await asyncio.gather(*futs)
            self.announcements += 1
            log.info(
                "home assistant: announced %d entities of %d devices on %s",
                len(self.entities),
                len(self.devices),
                self.link.broker.id,
            )
        except DeviceIOError as exc:
            log.info("home assistant: announcement interrupted (%s); again on reconnect", exc)

    async def _publish_changes(self) -> None:
        try:
            futs = self._availability_changes()
            dirty, self.dirty = self.dirty, set()
            futs += [self._send(self.entities[k].state_topic, self.latest[k]) for k in dirty]
            if futs:
                await asyncio.gather(*futs)
        except DeviceIOError:
            self._announce.set()  # republish everything once the link is back

    def _availability_changes(self) -> list[asyncio.Future[None]]:
        futs = []
        for dev in self.devices:
            h = self.health.get(dev)
            # A device with no health entry yet (push devices before their first message)
            # counts as online: expire_after still marks silent points unavailable.
            state = d.OFFLINE if h is not None and not h.connected and h.last_seen else d.ONLINE
            if self.availability.get(dev) != state:
                self.availability[dev] = state
                topic = d.device_availability_topic(self.settings, self.venue.id, dev)
                futs.append(self._send(topic, state))
        return futs

    # ---- from the broker ----------------------------------------------------------------------

    async def _inbound(self, batch: list[Inbound]) -> None:
        birth = d.birth_topic(self.settings)
        if any(m[0] == birth and m[1].strip() == d.ONLINE.encode() for m in batch):
            log.info("home assistant came online: announcing again")
            self._announce.set()

    def _down(self, exc: BaseException) -> None:
        log.info("home assistant: broker %s unavailable: %s", self.link.broker.id, exc)


def build_services(ctx: AreaContext) -> list[Service]:
    """Nothing unless the venue config has an enabled [home_assistant] section."""
    settings = ctx.config.home_assistant
    if settings is None or not settings.enabled:
        return []
    exporter = HomeAssistantExporter(ctx)
    # Wedged: readings wait on the bus and none was taken for 30 s (taking one never waits
    # for the broker, so only a stuck task stops it).
    live = Liveness(
        progress=lambda: exporter.consumed,
        busy=lambda: len(exporter.sub.channel) > 0,
        stall_after_s=30.0,
    )
    return [
        Service("home-assistant", exporter.run, stop=exporter.stop, restart=True, liveness=live)
    ]
