"""Fuzz every device codec and the MQTT path end to end with generated payloads.

Each codec gets random bytes, mutations of valid frames/documents (bit flips, truncation,
splices) and structured garbage (wrong types, huge and non-finite numbers, deep nesting), per
profile of its transport. A payload either decodes or raises the package's CodecError:
anything else is a crash, and a decode slower than STALL_S is a stall. The MQTT path publishes
payloads that are malformed by construction to devices behind a real Mosquitto and checks that
the driver counts exactly those, keeps running and still stores a valid reading after them.

    .venv/bin/python bench/fuzz.py [--per-codec 20000] [--mqtt-path 5000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import report
from drivers.ble import history
from drivers.ble.advertisement import Advertisement
from drivers.ble.codec import BTHOME_UUID, ENV_SENSING_UUID
from drivers.ble.codec import decode as ble_decode
from drivers.errors import CodecError
from drivers.modbus import frames
from drivers.modbus.codec import decode_block, plan_reads
from drivers.mqtt.codec import DeviceCodec
from drivers.opcua.codec import decode_value
from drivers.serial.mtsics import decode_reply
from firmware_profiles.loader import load_library
from firmware_profiles.sections.ble import full_uuid
from simulators.mqtt.malformed import BAD_AVAILABILITY, BAD_STATE, MIB

STALL_S = 0.5  # one decode taking longer than this is a stall
MAX_CRASH_SAMPLES = 5


class Tally:
    def __init__(self) -> None:
        self.payloads = 0
        self.decoded = 0
        self.malformed = 0
        self.crashes = 0
        self.stalls = 0
        self.slowest_ms = 0.0
        self.samples: list[str] = []

    def feed(self, fn: Callable[[], object], what: Callable[[], str]) -> None:
        self.payloads += 1
        t0 = time.perf_counter()
        try:
            fn()
            self.decoded += 1
        except CodecError:
            self.malformed += 1
        except Exception as exc:  # a crash is what this bench looks for
            self.crashes += 1
            if len(self.samples) < MAX_CRASH_SAMPLES:
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                self.samples.append(
                    f"{type(exc).__name__}: {str(exc)[:80]} at {tb.filename}:{tb.lineno} "
                    f"for {what()[:120]}"
                )
        dt = time.perf_counter() - t0
        self.slowest_ms = max(self.slowest_ms, dt * 1000)
        if dt > STALL_S:
            self.stalls += 1

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "payloads": self.payloads,
            "decoded": self.decoded,
            "malformed": self.malformed,
            "crashes": self.crashes,
            "stalls": self.stalls,
            "slowest_ms": round(self.slowest_ms, 2),
        }
        if self.samples:
            out["crash_samples"] = self.samples
        return out


# ---- generators -----------------------------------------------------------------------------


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        if op == 0 and b:  # flip bits
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # truncate
            del b[rng.randrange(len(b)) :]
        elif op == 2:  # insert random bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randrange(1, 8))
        elif op == 3 and b:  # duplicate a slice
            i = rng.randrange(len(b))
            b[i:i] = b[i : i + rng.randrange(1, 16)]
        else:  # overwrite with an extreme byte
            if b:
                b[rng.randrange(len(b))] = rng.choice([0x00, 0xFF, 0x7F, 0x80])
    return bytes(b)


def random_bytes(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 2, 3, 5, 8, 16, 40, 200, rng.randrange(1, 4096)])
    return rng.randbytes(n)


def weird_value(rng: random.Random, depth: int = 0) -> Any:
    k = rng.randrange(14 if depth < 4 else 10)
    if k == 0:
        return None
    if k == 1:
        return rng.random() < 0.5
    if k == 2:
        return rng.randrange(-(2**70), 2**70)
    if k == 3:
        return rng.choice([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324])
    if k == 4:
        return rng.uniform(-1e6, 1e6)
    if k == 5:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(0, 30)))
    if k == 6:
        return rng.choice(["ON", "OFF", "online", "true", "1e999", "NaN", "", "-", "12.5 g"])
    if k == 7:
        return 10 ** rng.randrange(300, 4200)  # huge integers JSON allows
    if k == 8:
        return rng.randbytes(rng.randrange(0, 16))
    if k == 9:
        return datetime(rng.randrange(1, 9999), 1, 1, tzinfo=UTC)
    if k in (10, 11):
        return [weird_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {
        rng.choice(["temperature", "ts", "ENERGY", "params", "value", "a", "0"]): weird_value(
            rng, depth + 1
        )
        for _ in range(rng.randrange(0, 5))
    }


def json_bytes(rng: random.Random, doc: Any) -> bytes:
    try:
        text = json.dumps(doc, default=repr)
    except (ValueError, TypeError):
        text = repr(doc)
    return text.encode("utf-8", "surrogatepass")


def deep(rng: random.Random) -> bytes:
    n = rng.choice([500, 1000, 1025, 5000, 100_000])
    open_, close = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return open_ * n + (b"1" if open_ != b"[" else b"") + close * n


# ---- per transport --------------------------------------------------------------------------


def fuzz_mqtt(rng: random.Random, n: int, lib: Any) -> Tally:
    tally = Tally()
    targets: list[tuple[DeviceCodec, str, list[bytes]]] = []
    for p in lib.profiles.values():
        if p.mqtt is None:
            continue
        codec = DeviceCodec(p.mqtt, "fuzz-dev")
        for topic in codec.topics:
            targets.append((codec, topic, []))
    # Bodies over the broker's max_payload_kib never reach a codec (the path counts them).
    catalogue = [p for p in (*BAD_STATE.values(), *BAD_AVAILABILITY.values()) if len(p) < MIB]
    valid = [
        b'{"temperature": 3.5, "humidity": 60, "ts": 1750000000}',
        b'{"method":"NotifyStatus","params":{"ts":1750000000.5,"switch:0":{"apower":12.5}}}',
        b'{"ENERGY":{"Total":1.5,"Power":[10,20]},"POWER":"ON","Time":"2025-01-01T00:00:00"}',
        b"ON",
        b"online",
        b'{"state":"online"}',
    ]
    now = 1_750_000_000.0
    for i in range(n):
        codec, topic, _ = targets[i % len(targets)]
        k = rng.randrange(10)
        if k == 0:
            payload = random_bytes(rng)
        elif k in (1, 2, 3):
            payload = mutate(rng, rng.choice(valid))
        elif k in (4, 5, 6):
            payload = json_bytes(rng, weird_value(rng))
        elif k == 7:
            payload = deep(rng)
        elif k == 8:
            payload = rng.choice(catalogue)
        else:
            payload = rng.choice(valid)
        tally.feed(
            lambda c=codec, t=topic, p=payload: c.decode(t, p, now),
            lambda t=topic, p=payload: f"{t} {p[:60]!r}",
        )
    return tally


def fuzz_modbus(rng: random.Random, n: int, lib: Any) -> Tally:
    tally = Tally()
    blocks = [
        b for p in lib.profiles.values() if p.modbus is not None for b in plan_reads(p.modbus)
    ]
    orders = ["big", "little"]
    for i in range(n):
        k = rng.randrange(6)
        if k <= 2:
            block = blocks[i % len(blocks)]
            count = max(0, block.count + rng.choice([0, 0, 0, -1, 1, -block.count, 5]))
            # What a backend can hand over: register words (in range or not) or coil bits.
            if rng.random() < 0.5:
                regs: list[Any] = [rng.randrange(0, 65536) for _ in range(count)]
            elif rng.random() < 0.5:
                regs = [rng.randrange(-(2**20), 2**20) for _ in range(count)]
            else:
                regs = [rng.random() < 0.5 for _ in range(count)]
            bo, wo = rng.choice(orders), rng.choice(orders)
            tally.feed(
                lambda b=block, r=regs, bo=bo, wo=wo: decode_block(b, r, bo, wo),
                lambda b=block, r=regs: f"{b} {r[:8]}",
            )
        elif k == 3:
            frame = mutate(
                rng, frames.rtu_frame(rng.randrange(256), rng.randbytes(rng.randrange(1, 30)))
            )
            tally.feed(lambda f=frame: frames.split_rtu(f), lambda f=frame: f.hex())
        elif k == 4:
            fc = rng.choice([1, 2, 3, 4, 5, 6, 15, 16, rng.randrange(256)])
            pdu = (
                mutate(rng, frames.read_response(3, [rng.randrange(65536) for _ in range(4)]))
                if rng.random() < 0.5
                else random_bytes(rng)
            )
            tally.feed(
                lambda fc=fc, p=pdu: frames.read_reply_values(fc, p, rng.randrange(0, 130)),
                lambda fc=fc, p=pdu: f"fc{fc} {p.hex()[:60]}",
            )
        else:
            data = random_bytes(rng)
            fc = rng.choice([1, 3, 4, 16, rng.randrange(256)])
            tally.feed(
                lambda d=data, fc=fc: (frames.rtu_reply_length(d, fc), frames.parse_request(d)),
                lambda d=data: d.hex()[:80],
            )
    return tally


def fuzz_opcua(rng: random.Random, n: int, lib: Any) -> Tally:
    tally = Tally()
    points = [pt for p in lib.profiles.values() if p.opcua is not None for pt in p.opcua.points]
    extra: list[Callable[[], Any]] = []
    try:  # the library's own scalar types, as a server sends them
        from asyncua import ua

        extra = [
            lambda: ua.LocalizedText(str(weird_value(rng)) if rng.random() < 0.3 else "Roast 160"),
            lambda: ua.QualifiedName("Prog", rng.randrange(0, 70000)),
            lambda: ua.Variant(rng.randrange(-(2**63), 2**63), ua.VariantType.Int64),
            lambda: ua.StatusCode(rng.randrange(0, 2**32)),
            lambda: rng.randbytes(rng.randrange(0, 40)),
        ]
    except ImportError:  # pragma: no cover - asyncua is a dependency
        pass
    for i in range(n):
        point = points[i % len(points)]
        raw = rng.choice(extra)() if extra and rng.random() < 0.25 else weird_value(rng)
        tally.feed(lambda pt=point, r=raw: decode_value(pt, r), lambda r=raw: repr(r)[:100])
    return tally


def fuzz_ble(rng: random.Random, n: int, lib: Any) -> Tally:
    tally = Tally()
    sections = [p.ble for p in lib.profiles.values() if p.ble is not None]
    uuids = [BTHOME_UUID, ENV_SENSING_UUID, full_uuid("fcd2"), full_uuid("181a")]
    companies = [0xEC88, 0xFFFF, 0x0000, 0xC2FF, 0x0001, 0x4A9B]
    names = ["", "sps", "tps", "TP357 (1)", "GVH5075_1", "Govee_H5074_1", "ATC_1234"]
    valid = [
        bytes.fromhex(h)
        for h in ("40000c02cc0903b712", "a4c138000001e40053154e0b6ce7", "8803bc1e2c64")
    ]
    for i in range(n):
        if i % 10 == 9:
            data = mutate(rng, random_bytes(rng)) if rng.random() < 0.5 else random_bytes(rng)
            tally.feed(lambda d=data: history.decode_records(d), lambda d=data: d.hex()[:80])
            continue
        section = sections[i % len(sections)]

        def payload() -> bytes:
            return mutate(rng, rng.choice(valid)) if rng.random() < 0.5 else random_bytes(rng)[:60]

        md = {rng.choice(companies): payload() for _ in range(rng.randrange(0, 3))}
        sd = {rng.choice(uuids): payload() for _ in range(rng.randrange(0, 3))}
        adv = Advertisement("A4:C1:38:00:00:01", rng.randrange(-127, 21), rng.choice(names), md, sd)
        tally.feed(lambda s=section, a=adv: ble_decode(s, a), lambda a=adv: repr(a)[:120])
    return tally


def fuzz_serial(rng: random.Random, n: int) -> Tally:
    tally = Tally()
    valid = [
        b"S S      12.30 g\r\n",
        b"SI D    -0.125 kg\r\n",
        b"S +\r\n",
        b'I2 A "XS204 1.0"\r\n',
        b"ES\r\n",
        b"T S   100.00 g\r\n",
        b"Z A\r\n",
        b"S I\r\n",
    ]
    for _ in range(n):
        k = rng.randrange(3)
        if k == 0:
            line = random_bytes(rng)[:120]
        elif k == 1:
            line = mutate(rng, rng.choice(valid))
        else:
            fields = [
                rng.choice(["S", "SI", "T", "Z", "I2", "ES", "EL"]),
                rng.choice(["S", "D", "A", "I", "+", "-", "L"]),
                str(weird_value(rng))[:30],
                rng.choice(["g", "kg", "lb", "ct", "", '"x']),
            ]
            line = " ".join(fields).encode("utf-8", "surrogatepass") + b"\r\n"
        tally.feed(lambda b=line: decode_reply(b), lambda b=line: repr(b)[:100])
    return tally


# ---- the MQTT path through Mosquitto ---------------------------------------------------------


def malformed_payloads(rng: random.Random, n: int) -> Iterator[bytes]:
    """Payloads no generic-json-sensor state topic accepts, each counted exactly once."""
    catalogue = list(BAD_STATE.values())
    for i in range(n):
        k = rng.randrange(5)
        if i < len(catalogue):
            yield catalogue[i]
        elif k == 0:
            yield b"\xff" + rng.randbytes(rng.randrange(0, 300))  # never UTF-8, never JSON
        elif k == 1:
            yield json.dumps(rng.choice([rng.random(), "text", [1, 2], None, True])).encode()
        elif k == 2:
            bad = rng.choice([[1], {"c": 2}, "warm", "1e999x", True and "NaN?"])
            yield json.dumps({"temperature": bad}).encode()
        elif k == 3:  # a list where an object is read, or an object nested past any parser
            n = rng.choice([10, 500, 5000, 100_000])
            m = rng.choice([5000, 100_000])  # an object nested shallower would be a valid one
            yield b"[" * n + b"]" * n if rng.random() < 0.5 else b'{"a":' * m + b"1" + b"}" * m
        else:
            yield json.dumps({"humidity": 10 ** rng.randrange(309, 400)}).encode()


async def mqtt_path(workdir: Path, n: int, seed: int, devices: int = 10) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from drivers.base import DriverContext
    from drivers.mqtt import factory
    from drivers.mqtt.broker import Mosquitto
    from drivers.mqtt.service import BrokerService
    from edge_agent.bus import Bus
    from edge_agent.clock import SystemClock
    from edge_agent.config.model import BrokerConfig, DeviceConfig, VenueConfig, VenueSection
    from edge_agent.health import HealthRegistry
    from edge_agent.store.writer import StoreWriter

    rng = random.Random(seed)
    broker = Mosquitto(workdir / "broker")
    broker.start()
    try:
        lib = load_library()
        profile = lib.profiles["generic-json-sensor"]
        devs = tuple(
            DeviceConfig(id=f"f{d:02d}", profile=profile.id, address=f"f{d:02d}", broker="b")
            for d in range(devices)
        )
        cfg = VenueConfig(
            VenueSection("fuzz", "Fuzz"),
            brokers=(BrokerConfig("b", port=broker.port, client_id="fuzz-box"),),
            devices=devs,
        )
        writer = StoreWriter(str(workdir / "fuzz.db"), telemetry_sync="normal")
        bus = Bus()
        writer.attach(bus)
        await writer.open()
        wtask = asyncio.create_task(writer.run())
        health = HealthRegistry()
        ctx = DriverContext(cfg, bus, SystemClock(), health, store=writer)
        (svc,) = factory.build(ctx, [(d, profile) for d in devs])
        service: BrokerService = ctx.shared["mqtt"]["b"]
        task = asyncio.create_task(svc.run())
        deadline = time.monotonic() + 10
        while not service.link.connected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        sent: dict[str, int] = {d.id: 0 for d in devs}
        payloads = list(malformed_payloads(rng, n))

        def publish() -> None:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz-pub")
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", broker.port)
            c.loop_start()
            infos = []
            for i, p in enumerate(payloads):
                dev = devs[i % devices].id
                sent[dev] += 1
                infos.append(c.publish(f"sensors/{dev}/state", p, qos=1))
            for d in devs:  # one valid reading per device after all the garbage
                infos.append(c.publish(f"sensors/{d.id}/state", b'{"temperature": 4.0}', qos=1))
            for info in infos:
                info.wait_for_publish(120)
            c.disconnect()
            c.loop_stop()

        t0 = time.perf_counter()
        await asyncio.to_thread(publish)
        total = len(payloads) + devices
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (  # noqa: ASYNC110
            service.link.handled < total or service.link.unacknowledged
        ):
            await asyncio.sleep(0.02)
        await writer.flush()
        elapsed = time.perf_counter() - t0
        counted = {d.id: health.get(d.id).malformed for d in devs}  # type: ignore[union-attr]
        valid_after = sum(1 for d in devs if health.get(d.id).connected)  # type: ignore[union-attr]
        alive = not task.done()
        stalled = service.link.handled < total
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.stop()
        await wtask
        return {
            "payloads": len(payloads),
            "malformed_counted": sum(counted.values()),
            "counts_equal_sent": counted == sent,
            "valid_reading_after_garbage": f"{valid_after}/{devices}",
            "service_alive": alive,
            "stalls": int(stalled),
            "crashes": int(not alive),
            "messages_per_s": round(total / elapsed),
        }
    finally:
        broker.stop()


def main() -> None:
    # Third-party parsers log every bad advert they see; the tally is what counts here.
    logging.disable(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-codec", type=int, default=20_000)
    ap.add_argument("--mqtt-path", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    lib = load_library()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    tallies = {
        "mqtt_codec": fuzz_mqtt(rng, args.per_codec, lib),
        "modbus": fuzz_modbus(rng, args.per_codec, lib),
        "opcua": fuzz_opcua(rng, args.per_codec, lib),
        "ble": fuzz_ble(rng, args.per_codec, lib),
        "serial": fuzz_serial(rng, args.per_codec),
    }
    codec_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as d:
        path = asyncio.run(mqtt_path(Path(d), args.mqtt_path, args.seed))
    figures: dict[str, Any] = {k: t.figures() for k, t in tallies.items()}
    figures["mqtt_path"] = path
    figures["total_payloads"] = sum(t.payloads for t in tallies.values()) + path["payloads"]
    figures["crashes"] = sum(t.crashes for t in tallies.values()) + path["crashes"]
    figures["stalls"] = sum(t.stalls for t in tallies.values()) + path["stalls"]
    figures["mqtt_path_counts_equal_sent"] = path["counts_equal_sent"]
    figures["codec_seconds"] = round(codec_s, 1)
    report(
        "fuzz: every codec and the MQTT path",
        figures,
        [
            "goal: >= 100,000 payloads, 0 crashes, 0 stalls, MQTT malformed counts equal to sent",
            f"a stall is one decode over {STALL_S} s, or MQTT messages left unhandled",
        ],
    )


if __name__ == "__main__":
    main()
