"""The venue config, as the agent sees it after loading: frozen, typed, validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from firmware_profiles.schema import SLUG, SLUG_HINT

TOPIC = r"[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*"
TOPIC_HINT = "MQTT topic levels of letters, digits, '_' and '-' separated by '/'"
STANDARD_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)


@dataclass(frozen=True, slots=True)
class VenueSection:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    name: str = field(metadata={"nonempty": True})
    timezone: str = "UTC"
    locale: Literal["en", "it"] = "en"
    temperature_unit: Literal["C", "F"] = "C"
    food_safety_region: Literal["uk", "us"] = "uk"


@dataclass(frozen=True, slots=True)
class StorageSection:
    path: str = "beerflow.db"
    disk_quota_mb: int = field(default=1024, metadata={"min": 16})
    raw_retention_days: float = field(default=30.0, metadata={"min": 0.01})
    rollup_retention_days: float = field(default=1095.0, metadata={"min": 1})
    rollup_bucket_s: float = field(default=900.0, metadata={"min": 10, "max": 86400})
    # Food-safety records must outlive any inspection window; two years is the floor.
    event_retention_days: float = field(default=1095.0, metadata={"min": 730})
    telemetry_sync: Literal["full", "normal"] = "full"

    def __post_init__(self) -> None:
        if self.rollup_retention_days < self.raw_retention_days:
            raise ValueError("rollup_retention_days must not be shorter than raw_retention_days")


@dataclass(frozen=True, slots=True)
class ApiSection:
    socket: str = "api.sock"
    tcp_host: str = "127.0.0.1"
    tcp_port: int | None = field(default=None, metadata={"min": 1, "max": 65535})
    # The API takes staff PINs and signs HACCP records: a listener beyond loopback is refused
    # unless this says, in the config an inspector can read, that it was meant.
    allow_remote: bool = False


@dataclass(frozen=True, slots=True)
class CloudSection:
    url: str = field(
        metadata={"pattern": r"https?://[^\s/]+(/\S*)?", "pattern_hint": "an http(s) URL"}
    )
    # The encrypted outbox's share of the disk (default: half of storage.disk_quota_mb); as it
    # nears, bulk then telemetry are evicted (with loss records); alarms, HACCP records and
    # audit entries never are.
    outbox_quota_mb: int | None = field(default=None, metadata={"min": 1})
    max_envelope_kb: int = field(default=512, metadata={"min": 16, "max": 16384})
    # Optional uplink cap for metered or shared lines.
    bandwidth_kbps: float | None = field(default=None, metadata={"min": 1})


@dataclass(frozen=True, slots=True)
class ProfilesSection:
    dirs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BusConfig:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    port: str = field(metadata={"nonempty": True})
    type: Literal["rs485", "rs232"] = "rs485"
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: float = 1
    bytesize: int = 8
    timeout_s: float = field(default=0.5, metadata={"min": 0.01, "max": 30})
    inter_frame_gap_ms: float | None = field(default=None, metadata={"min": 0, "max": 1000})

    def __post_init__(self) -> None:
        if self.baudrate not in STANDARD_BAUDRATES:
            raise ValueError(
                f"baudrate {self.baudrate} is not a standard rate "
                f"({', '.join(map(str, STANDARD_BAUDRATES))})"
            )
        if self.bytesize not in (5, 6, 7, 8):
            raise ValueError(f"bytesize must be 5, 6, 7 or 8 (got {self.bytesize})")
        if self.stopbits not in (1, 1.5, 2):
            raise ValueError(f"stopbits must be 1, 1.5 or 2 (got {self.stopbits})")
        if self.stopbits == 1.5 and self.bytesize != 5:
            raise ValueError("1.5 stop bits exist only with 5 data bits")

    @property
    def char_bits(self) -> float:
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def gap_s(self) -> float:
        """The silent interval between frames: 3.5 characters, at least 1.75 ms above 19200."""
        if self.inter_frame_gap_ms is not None:
            return self.inter_frame_gap_ms / 1000
        if self.baudrate > 19200:
            return 0.00175
        return 3.5 * self.char_bits / self.baudrate


@dataclass(frozen=True, slots=True)
class AutoDevices:
    """Devices of one profile that appear by themselves: the profile's `{device}` level is
    subscribed as a wildcard and each new value of it becomes a device (Zigbee2MQTT-style
    base topic), up to `max_devices`, only those matching `allow` (shell patterns) if given."""

    profile: str = field(metadata={"nonempty": True})
    max_devices: int = field(default=100, metadata={"min": 1, "max": 10000})
    allow: tuple[str, ...] = ()
    id_prefix: str = ""  # the device id is this plus the topic level, made a slug
    zone: str = ""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """An MQTT broker the box subscribes to (usually Mosquitto on the box or the venue LAN)."""

    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    host: str = "127.0.0.1"
    port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    tls: bool = False
    ca_file: str | None = None
    username: str | None = None
    # The password is read from this file (mode 0600), never written into the venue config.
    password_file: str | None = None
    client_id: str | None = None
    keepalive_s: int = field(default=30, metadata={"min": 5, "max": 3600})
    # QoS 1 messages the broker may send before the box acknowledges (MQTT 5 Receive
    # Maximum). The box acknowledges only after the commit; this window keeps the stream
    # flowing meanwhile and bounds what a crash makes the broker send again.
    inflight_window: int = field(default=2000, metadata={"min": 1, "max": 65535})
    # A bigger message is counted as malformed for its device, never parsed.
    max_payload_kib: int = field(default=1024, metadata={"min": 1, "max": 262144})
    auto_devices: tuple[AutoDevices, ...] = ()


@dataclass(frozen=True, slots=True)
class HomeAssistantSection:
    """Export every point to Home Assistant through MQTT discovery (opt-in: absent, nothing
    is published)."""

    broker: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})  # a [[brokers]] id
    enabled: bool = True
    discovery_prefix: str = field(
        default="homeassistant", metadata={"pattern": TOPIC, "pattern_hint": TOPIC_HINT}
    )
    base_topic: str = field(
        default="beerflow", metadata={"pattern": TOPIC, "pattern_hint": TOPIC_HINT}
    )
    # A point's state is published at most this often (its latest value wins).
    min_interval_s: float = field(default=5.0, metadata={"min": 0, "max": 3600})
    # Home Assistant shows a point unavailable when nothing came for this long (0: never).
    expire_after_s: int = field(default=900, metadata={"min": 0, "max": 86400})


@dataclass(frozen=True, slots=True)
class BleScanConfig:
    """The venue's BLE scanner ([ble]): which adapter, when to restart a silent scan."""

    adapter: str = "hci0"
    # Restart the scan when no advertisement arrived for this long (a stuck adapter).
    watchdog_s: float = field(default=120.0, metadata={"min": 5, "max": 3600})


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str = field(metadata={"pattern": SLUG, "pattern_hint": SLUG_HINT})
    profile: str = field(metadata={"nonempty": True})
    label: str = ""
    zone: str = ""
    bus: str | None = None
    host: str | None = None
    port: int | None = field(default=None, metadata={"min": 1, "max": 65535})
    unit_id: int = field(default=1, metadata={"min": 0, "max": 247})
    # Transport-specific addressing: a BLE MAC, an MQTT device id/topic, an OPC-UA endpoint URL.
    address: str | None = None
    broker: str | None = None
    security: Literal["none", "sign", "sign_and_encrypt"] = "none"
    bindkey: str | None = None
    # Per-device overrides of profile parameters (e.g. keg_tare_kg, density_kg_per_l).
    params: dict[str, float] = field(default_factory=dict)
    poll_interval_s: float = field(default=5.0, metadata={"min": 0.05, "max": 86400})
    enabled: bool = True

    @property
    def display_name(self) -> str:
        return self.label or self.id


STAFF_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}"


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Someone who may acknowledge alarms and sign HACCP checks at the terminal."""

    id: str = field(
        metadata={"pattern": STAFF_ID, "pattern_hint": "letters, digits, '.', '_', '-' (max 32)"}
    )
    name: str = field(metadata={"nonempty": True})
    # A slow hash of the PIN (`beerflow-edge staff hash-pin`), never the PIN itself.
    pin_hash: str = field(repr=False)
    role: Literal["staff", "manager"] = "staff"


@dataclass(frozen=True, slots=True)
class VenueConfig:
    venue: VenueSection
    storage: StorageSection = StorageSection()
    api: ApiSection = ApiSection()
    cloud: CloudSection | None = None
    profiles: ProfilesSection = ProfilesSection()
    buses: tuple[BusConfig, ...] = ()
    brokers: tuple[BrokerConfig, ...] = ()
    ble: BleScanConfig = BleScanConfig()
    devices: tuple[DeviceConfig, ...] = ()
    staff: tuple[StaffMember, ...] = ()
    home_assistant: HomeAssistantSection | None = None
    source: str = ""

    @property
    def outbox_quota_mb(self) -> int:
        explicit = self.cloud.outbox_quota_mb if self.cloud is not None else None
        return explicit if explicit is not None else max(1, self.storage.disk_quota_mb // 2)

    def device(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def bus(self, bus_id: str) -> BusConfig | None:
        return next((b for b in self.buses if b.id == bus_id), None)

    def broker(self, broker_id: str) -> BrokerConfig | None:
        return next((b for b in self.brokers if b.id == broker_id), None)
