"""Commands to one MQTT device: validated against the profile, published QoS 1, and, where the
profile names a reply, confirmed by the device (Shelly's RPC reply by id, Tasmota's RESULT,
Zigbee2MQTT's new state)."""

from __future__ import annotations

import asyncio

from drivers.base import CommandResult
from drivers.errors import CommandRejected, DeviceIOError
from drivers.mqtt.codec import render_topic
from drivers.mqtt.command_codec import judge_reply, render
from drivers.mqtt.service import BrokerService, MqttDevice
from edge_agent.messages import Command


class MqttCommander:
    def __init__(self, service: BrokerService, device: MqttDevice) -> None:
        self.service = service
        self.device = device
        self._specs = {c.name: c for c in device.section.commands}

    async def execute(self, command: Command) -> CommandResult:
        spec = self._specs.get(command.name)
        if spec is None:
            known = ", ".join(sorted(self._specs)) or "none"
            return CommandResult(False, error=f"unknown command {command.name!r} (known: {known})")
        svc = self.service
        rpc_id = svc.next_rpc_id()
        try:
            rendered = render(spec, command.args, rpc_id, svc.client_id)
        except CommandRejected as exc:
            return CommandResult(False, error=str(exc))
        address = self.device.codec.address
        waiter = None
        if spec.reply_topic is not None:
            reply_topic = render_topic(spec.reply_topic, address, svc.client_id)
            waiter = svc.expect(reply_topic, lambda p: judge_reply(spec, rendered, p, rpc_id))
        try:
            ack = svc.link.publish(
                render_topic(spec.topic, address),
                rendered.payload,
                max(self.device.section.qos, 1),
                spec.retain,
            )
            await asyncio.wait_for(ack, spec.timeout_s)
            if waiter is None:
                return CommandResult(True)
            outcome = await asyncio.wait_for(asyncio.shield(waiter.future), spec.timeout_s)
        except DeviceIOError as exc:
            return CommandResult(False, error=str(exc))
        except TimeoutError:
            return CommandResult(
                False, error=f"no confirmation from the device within {spec.timeout_s:g} s"
            )
        finally:
            if waiter is not None:
                svc.forget(waiter)
        return CommandResult(outcome.ok, outcome.value, outcome.error)
