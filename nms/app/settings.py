"""Configuration: a YAML file plus ``NMS_`` environment overrides.

Precedence, highest first: environment (``NMS_DETECTOR__DOWN_AFTER=5s``; ``__``
separates nesting levels), the YAML file given with ``--config``, the defaults
below. Durations are strings with a unit: ``500ms``, ``30s``, ``10m``, ``24h``,
``3d`` (and sums such as ``1h30m``). Every invalid value, unknown key or unknown
``NMS_`` variable is reported by its dotted key, and start-up stops (exit code 2).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nms.detector.degradation import Thresholds
from nms.errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_MAX_DURATION_SECONDS = 3650 * 86400  # ten years: beyond that a value is a typo
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> timedelta:
    """Parse ``500ms``, ``30s``, ``10m``, ``24h``, ``3d`` or a sum like ``1h30m``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration such as '30s', got {value!r}")
    if isinstance(value, int | float):
        raise ValueError(f"{value!r} has no unit: write e.g. '{value}s' or '{value}m'")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(
            f"{value!r} is not a duration: use a number and a unit (ms, s, m, h, d), e.g. '30s'"
        )
    if seconds > _MAX_DURATION_SECONDS:
        raise ValueError(f"{value!r} is too long: at most 3650d")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest readable form: ``10m``, ``1h30m``, ``500ms``."""
    ms = round(delta.total_seconds() * 1000)
    if ms % 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _positive(delta: timedelta) -> timedelta:
    if delta <= timedelta(0):
        raise ValueError("must be greater than zero")
    return delta


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DegradedSettings(_Section):
    """Default P2 thresholds (a service profile in the inventory may override them)."""

    window: Duration = timedelta(minutes=15)
    coverage: float = Field(default=0.8, gt=0, le=1)
    loss_open: float = Field(default=0.05, ge=0, le=1)
    loss_clear: float = Field(default=0.02, ge=0, le=1)
    latency_open: Duration | None = timedelta(milliseconds=150)
    latency_clear: Duration | None = timedelta(milliseconds=120)
    errors_open: float | None = Field(default=1.0, ge=0)
    errors_clear: float | None = Field(default=0.2, ge=0)
    flap_count: int = Field(default=4, ge=2)
    flap_window: Duration = timedelta(minutes=15)
    clear_after: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _check(self) -> DegradedSettings:
        self.thresholds()  # the same cross-field rules as the detector applies
        return self

    def thresholds(self) -> Thresholds:
        return Thresholds(**dict(self))


class DetectorSettings(_Section):
    down_after: Duration = timedelta(minutes=10)
    """Continuous failure before an NTU is confirmed down and a P1 opens."""
    restore_after: int = Field(default=2, ge=1, le=100)
    """Consecutive good probe cycles before a down NTU counts as restored."""
    stale_after: Duration = timedelta(minutes=2)
    """No observation for this long -> the NTU is 'unknown' (a NOC alert, never a case)."""
    tick: Duration = timedelta(seconds=1)
    """How often deadlines (staleness) are evaluated."""
    degraded: DegradedSettings = DegradedSettings()

    @model_validator(mode="after")
    def _check(self) -> DetectorSettings:
        for name in ("down_after", "stale_after", "tick"):
            _positive(getattr(self, name))
        return self


class IcmpSettings(_Section):
    enabled: bool = True
    interval: Duration = timedelta(seconds=30)
    count: int = Field(default=5, ge=1, le=100)
    timeout: Duration = timedelta(seconds=1)
    spacing: Duration = timedelta(milliseconds=200)
    """Gap between the echoes of one burst to the same target."""
    spread: Duration | None = None
    """Time over which a cycle's targets are spread; default: most of the interval."""
    privileged: bool | None = None
    """True: raw sockets; False: unprivileged datagram ICMP; unset: raw if permitted."""

    @model_validator(mode="after")
    def _check(self) -> IcmpSettings:
        _positive(self.interval)
        _positive(self.timeout)
        burst = self.spacing * (self.count - 1) + self.timeout
        if burst >= self.interval:
            raise ValueError(
                f"a burst ({self.count} echoes {format_duration(self.spacing)} apart plus "
                f"{format_duration(self.timeout)} timeout) does not fit in the interval "
                f"{format_duration(self.interval)}"
            )
        if self.spread is not None and self.spread + burst > self.interval:
            raise ValueError("spread plus one burst must fit in the interval")
        return self

    def effective_spread(self) -> timedelta:
        if self.spread is not None:
            return self.spread
        burst = self.spacing * (self.count - 1) + self.timeout
        return (self.interval - burst) * 0.5


class TrapSettings(_Section):
    enabled: bool = False
    listen: str = "0.0.0.0:162"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, listen: str) -> str:
        split_listen(listen)
        return listen


class SnmpSettings(_Section):
    enabled: bool = True
    """Poll the NTUs that have an ``snmp`` section in the inventory."""
    interval: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(seconds=1)
    retries: int = Field(default=1, ge=0, le=10)
    max_in_flight: int = Field(default=1000, ge=1, le=100_000)
    traps: TrapSettings = TrapSettings()

    @model_validator(mode="after")
    def _check(self) -> SnmpSettings:
        _positive(self.interval)
        _positive(self.timeout)
        if self.timeout * (self.retries + 1) >= self.interval:
            raise ValueError("timeout x (retries + 1) must be shorter than the interval")
        return self


class ProbeSettings(_Section):
    icmp: IcmpSettings = IcmpSettings()
    snmp: SnmpSettings = SnmpSettings()


class MonitoringWindowSettings(_Section):
    p1: Duration = timedelta(hours=24)
    p2: Duration = timedelta(hours=72)


class RepairTimeSettings(_Section):
    """Default time to repair per priority (an NTU's ``attributes.ttr`` overrides)."""

    p1: Duration | None = timedelta(hours=4)
    p2: Duration | None = timedelta(hours=8)
    p3: Duration | None = None


class WaitingCustomerSettings(_Section):
    reminder_after: Duration = timedelta(days=2)
    close_after: Duration = timedelta(days=4)
    """Auto-close after this long without a reply (a customer's
    ``attributes.waiting_customer_close_after`` overrides, e.g. 25d)."""
    recheck: Duration = timedelta(hours=1)
    """How often a held auto-close is retried while the NTU is still down."""


class CaseSettings(_Section):
    monitoring_window: MonitoringWindowSettings = MonitoringWindowSettings()
    first_response: Duration = timedelta(minutes=30)
    """Per-contract override: a customer's ``attributes.first_response`` (e.g. 2h)."""
    unassigned_after: Duration = timedelta(hours=1)
    ttr: RepairTimeSettings = RepairTimeSettings()
    waiting_customer: WaitingCustomerSettings = WaitingCustomerSettings()
    dispatch_notice: Duration = timedelta(hours=24)
    ticker_interval: Duration = timedelta(seconds=30)
    """How often due case deadlines (SLA breaches, windows, reminders) are acted on."""

    @model_validator(mode="after")
    def _check(self) -> CaseSettings:
        for name in ("first_response", "unassigned_after", "ticker_interval"):
            _positive(getattr(self, name))
        for window in (self.monitoring_window.p1, self.monitoring_window.p2):
            _positive(window)
        w = self.waiting_customer
        for value in (w.reminder_after, w.close_after, w.recheck):
            _positive(value)
        return self


class NotificationSettings(_Section):
    """Customer notifications: e-mail, webhooks (always on) and MQTT."""

    enabled: bool = True
    interval: Duration = timedelta(seconds=5)
    """How often the dispatcher looks for messages to send."""
    smtp_host: str | None = None
    """E-mail is off until this is set."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "noc@localhost"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    mqtt_url: str | None = None
    """``mqtt://[user:password@]host[:port]``; MQTT is off until this is set."""
    mqtt_topic_prefix: str = "nms/v1"
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base: Duration = timedelta(seconds=30)
    backoff_cap: Duration = timedelta(hours=1)

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, url: str | None) -> str | None:
        return None if url is None else check_mqtt_url(url)

    @model_validator(mode="after")
    def _check(self) -> NotificationSettings:
        _positive(self.interval)
        _positive(self.backoff_base)
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must not be shorter than backoff_base")
        return self


class MaintenanceSettings(_Section):
    planned_notice: Duration = timedelta(days=14)
    """Least notice for a planned window (some contracts: 5 working days ~ 7d)."""
    max_duration: Duration = timedelta(days=7)
    emergency_backdate: Duration = timedelta(minutes=5)
    """How far in the past an emergency window may be recorded as having started."""
    refresh: Duration = timedelta(seconds=5)
    """How often the detector re-reads the active windows."""

    @model_validator(mode="after")
    def _check(self) -> MaintenanceSettings:
        _positive(self.max_duration)
        _positive(self.refresh)
        return self


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///./nms.db"

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with 'sqlite+aiosqlite://' or 'postgresql+asyncpg://'")
        return url


class ApiSettings(_Section):
    listen: str = "127.0.0.1:8080"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, listen: str) -> str:
        split_listen(listen)
        return listen


class BusSettings(_Section):
    """The MQTT bus of the distributed wiring (``nms probe`` / ``nms detector``)."""

    url: str | None = None
    """``mqtt://[user:password@]host[:port]``; needed by ``nms probe`` and ``nms detector``."""
    topic_prefix: str = "nms/v1"
    session_expiry: Duration = timedelta(hours=1)
    """How long the broker keeps queueing for the detector while no detector is connected."""
    buffer_batches: int = Field(default=2000, ge=1, le=1_000_000)
    """Messages a probe worker keeps while the broker is unreachable (oldest dropped)."""
    heartbeat: Duration = timedelta(seconds=5)
    """How often a probe worker says it is alive."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        if url is not None:
            check_mqtt_url(url)
            if url.startswith("mqtts://"):
                raise ValueError("TLS (mqtts://) is not supported on the bus yet; use mqtt://")
        return url

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, prefix: str) -> str:
        if not prefix or any(c in prefix for c in "+#") or prefix[0] == "/" or prefix[-1] == "/":
            raise ValueError("must be a plain topic such as 'nms/v1'")
        return prefix

    @field_validator("session_expiry", "heartbeat")
    @classmethod
    def _check_positive(cls, value: timedelta) -> timedelta:
        return _positive(value)


class ClusterSettings(_Section):
    """Processes of the distributed wiring."""

    probe_listen: str = "127.0.0.1:9101"
    """``/metrics`` and ``/healthz`` of ``nms probe``."""
    detector_listen: str = "127.0.0.1:9102"
    """``/metrics`` and ``/healthz`` of ``nms detector``."""
    leader_check: Duration = timedelta(seconds=1)
    """How often the leader checks its lock, and a standby tries to take it."""
    shard_stale_after: Duration = timedelta(seconds=15)
    """No heartbeat from a probe shard for this long: the shard counts as down."""

    @field_validator("probe_listen", "detector_listen")
    @classmethod
    def _check_listen(cls, listen: str) -> str:
        split_listen(listen)
        return listen

    @field_validator("leader_check", "shard_stale_after")
    @classmethod
    def _check_positive(cls, value: timedelta) -> timedelta:
        return _positive(value)


def check_mqtt_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not an MQTT URL such as mqtt://host:1883")
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return url


class InventorySettings(_Section):
    path: Path | None = None
    watch_interval: Duration = timedelta(seconds=5)
    """How often the inventory file is checked for changes (SIGHUP reloads at once)."""


class LogSettings(_Section):
    level: str = "info"

    @field_validator("level")
    @classmethod
    def _check_level(cls, level: str) -> str:
        if level.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return level.lower()


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) -> (host, port)."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{listen!r} is not host:port (e.g. 127.0.0.1:8080)")
    return host.strip("[]"), int(port_text)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NMS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    detector: DetectorSettings = DetectorSettings()
    probes: ProbeSettings = ProbeSettings()
    cases: CaseSettings = CaseSettings()
    notifications: NotificationSettings = NotificationSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    bus: BusSettings = BusSettings()
    cluster: ClusterSettings = ClusterSettings()
    inventory: InventorySettings = InventorySettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)


def _known_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        names.add(env)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _known_env_names(annotation, env + "__")
    return names


def _unknown_env(environ: dict[str, str]) -> list[str]:
    known = _known_env_names(Settings, "NMS_")
    return sorted(k for k in environ if k.startswith("NMS_") and k.upper() not in known)


def _format_validation(exc: ValidationError, path: Path | None) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        env_name = "NMS_" + "__".join(loc).upper()
        if env_name in os.environ:
            origin = f"environment {env_name}"
        else:
            origin = str(path) if path else "defaults"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{origin}: {key}: {message}")
    return lines


def load_settings(path: Path | None = None) -> Settings:
    """Build the settings from ``path`` (optional YAML) and ``NMS_`` environment variables.

    Raises:
        ConfigError: with one line per problem, each naming the key.
    """
    data: Any = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError([f"{where}: not valid YAML: {exc}"]) from exc
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: expected a mapping of settings at the top level"])
    problems = [
        f"environment {name}: unknown setting (check the spelling; nesting uses '__')"
        for name in _unknown_env(dict(os.environ))
    ]
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(problems + _format_validation(exc, path)) from None
    if problems:
        raise ConfigError(problems)
    return settings
