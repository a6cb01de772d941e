"""Commands from people: `POST /devices/{device}/commands` on the local API.

Body: `{"command": NAME, "args": {ARG: VALUE, ...}, "staff_id": ID, "pin": PIN}`. The command
must be one the device's profile declares; its arguments are then typed, range-checked and
(for text and enumerated arguments) matched against the profile by the device's driver before
anything is sent. The PIN is checked last, so a malformed request does not cost a PIN attempt.
The command runs in order with the device's other commands, and its outcome is on record as a
`command.result` event whose origin names the staff member (`staff:Name (id)`), before the
reply is sent: 200 with the value read back, 422 when it was refused or failed, 401/429 for a
wrong PIN or a lock-out, 404 for an unknown device, 409 for a device that takes no commands.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from aiohttp import web

from beerflow_edge.agent_view import AgentView as Agent
from edge_agent import staff_api
from edge_agent.messages import Command, Value
from firmware_profiles.schema import Profile

COMMAND_TTL_S = 60.0
MAX_ARGS = 16
MAX_TEXT = 256


def command_names(profile: Profile) -> list[str]:
    for section in (profile.modbus, profile.opcua, profile.mqtt, profile.serial, profile.ble):
        if section is not None:
            return [c.name for c in getattr(section, "commands", ())]
    return []


def _args(raw: Any) -> dict[str, Value]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_ARGS:
        raise web.HTTPBadRequest(text=f"'args' must be an object of at most {MAX_ARGS} entries\n")
    out: dict[str, Value] = {}
    for key, value in raw.items():
        text = isinstance(value, str) and len(value) <= MAX_TEXT
        number = isinstance(value, bool | int) or (
            isinstance(value, float) and math.isfinite(value)
        )
        if text or number:
            out[key] = value
        else:
            raise web.HTTPBadRequest(
                text=f"argument {key!r} must be text, a finite number or true/false\n"
            )
    return out


def add_routes(app: web.Application, agent: Agent) -> None:
    staff = staff_api.directory(
        app, agent.config.staff, agent.clock, agent.bus.publish, agent.config.storage.path
    )

    async def run_command(request: web.Request) -> web.Response:
        device_id = request.match_info["device"]
        device = agent.config.device(device_id)
        if device is None:
            raise web.HTTPNotFound(text=f"unknown device {device_id!r}\n")
        profile = agent.library.get(device.profile)
        names = command_names(profile) if profile is not None else []
        if not names or device_id not in agent.drivers.commanders:
            raise web.HTTPConflict(text=f"{device_id} takes no commands\n")
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body must be JSON\n") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object\n")
        name = body.get("command")
        if not isinstance(name, str) or name not in names:
            raise web.HTTPBadRequest(
                text=f"'command' must be one of {', '.join(names)} for {device_id}\n"
            )
        args = _args(body.get("args"))
        who = await staff_api.signed(staff, body)
        now = agent.clock.time()
        cmd = Command(
            uuid.uuid4().hex,
            device_id,
            name,
            args,
            f"staff:{who.name} ({who.id})",
            now,
            now + COMMAND_TTL_S,
        )
        try:
            result = await asyncio.wait_for(agent.commands.submit(cmd), COMMAND_TTL_S * 2)
        except TimeoutError:
            raise web.HTTPGatewayTimeout(
                text=f"{device_id} did not finish {name} in time\n"
            ) from None
        payload = {
            "command_id": cmd.command_id,
            "device": device_id,
            "command": name,
            "ok": result.ok,
            "value": result.value,
            "error": result.error,
            "by": f"{who.name} ({who.id})",
        }
        return web.json_response(payload, status=200 if result.ok else 422)

    app.router.add_post("/devices/{device}/commands", run_command)
