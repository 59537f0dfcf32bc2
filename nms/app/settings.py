"""Configuration: a YAML file plus ``NMS_`` environment overrides.

Precedence, highest first: environment (``NMS_DETECTOR__DOWN_AFTER=5s``; ``__``
separates nesting levels), the YAML file given with ``--config``, the defaults
below. Durations are strings with a unit: ``500ms``, ``30s``, ``10m``, ``24h``,
``3d`` (and sums such as ``1h30m``). Every invalid value, unknown key or unknown
``NMS_`` variable is reported by its dotted key, and start-up stops (exit code 2).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from caseapi.secrets import ENC_PREFIX, SecretBox, SecretDecryptError, SecretKeyError
from caseapi.settings import (
    DEFAULT_MAX_BODY,
    AttachmentSettings,
    AuditSettings,
    BoardSettings,
    CaseSettings,
    DatabaseSettings,
    Duration,
    MailSettings,
    MaintenanceSettings,
    NotificationSettings,
    RateLimitSettings,
    SessionSettings,
    check_mqtt_url,
    format_duration,
    parse_duration,
)
from caseapi.settings import positive as _positive
from nms.bus.mqtt.settings import masked
from nms.bus.mqtt.tls import check_file
from nms.detector.settings import DegradedSettings, DetectorSettings
from nms.errors import ConfigError
from nms.probing.listen import split_listen
from nms.probing.settings import IcmpSettings, ProbeSettings, SnmpSettings, TrapSettings

__all__ = [
    "CaseSettings",
    "DatabaseSettings",
    "DegradedSettings",
    "DetectorSettings",
    "Duration",
    "EventLoop",
    "IcmpSettings",
    "MailSettings",
    "MaintenanceSettings",
    "MetricsSettings",
    "NotificationSettings",
    "ProbeSettings",
    "RateLimitSettings",
    "RuntimeSettings",
    "Settings",
    "SnmpSettings",
    "TrapSettings",
    "format_duration",
    "load_settings",
    "parse_duration",
    "split_listen",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_API_WORKERS = 64
"""``api.workers`` above this is a typo, not a machine."""


class ApiSettings(_Section):
    listen: str = "127.0.0.1:8080"
    max_body: ByteSize = Field(default=ByteSize(DEFAULT_MAX_BODY), ge=1024, le=2**30)
    """Request bodies above this size (``1MiB``, ``256KiB``, bytes) are refused with 413."""
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    """Proxies (addresses or networks) whose ``X-Forwarded-For`` names the client;
    none by default: the connection's peer is the client."""
    rate_limits: RateLimitSettings = RateLimitSettings()
    sessions: SessionSettings = SessionSettings()
    """The web console's sessions: idle and absolute expiry."""
    workers: int = 1
    """Processes serving the API on ``listen`` (1: the process itself, ``nms api`` or
    ``nms run``). More use more cores, and in ``nms run`` take the API off the probes'
    core; each worker keeps its own in-memory rate limits unless
    ``rate_limits.storage_url`` (Redis) is set."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, listen: str) -> str:
        split_listen(listen)
        return listen

    @field_validator("workers")
    @classmethod
    def _check_workers(cls, workers: int) -> int:
        if workers < 1:
            raise ValueError(f"must be at least 1 (the process itself serves), not {workers}")
        if workers > MAX_API_WORKERS:
            raise ValueError(
                f"at most {MAX_API_WORKERS}, not {workers} (one per core is the useful most)"
            )
        return workers


class BusSettings(_Section):
    """The MQTT bus of the distributed wiring (``nms probe`` / ``nms detector``)."""

    url: str | None = Field(default=None, repr=False)  # may carry a password
    """``mqtt://host[:port]``, or ``mqtts://host[:port]`` for TLS (port 8883 by default);
    needed by ``nms probe`` and ``nms detector``. A ``user:password@`` in it moves to
    ``username`` and ``password`` (so that it is never shown)."""
    username: str | None = None
    """The user name to log in with (a broker ``password_file``); a broker that takes
    the client certificate's name as the user name ignores it."""
    password: SecretStr | None = None
    """Its password (needs ``username``); never shown."""
    tls_ca: Path | None = None
    """PEM CA certificate the broker's certificate must chain to (``mqtts://`` only;
    default: the system's trust store). The broker's name must match the URL's host."""
    tls_cert: Path | None = None
    """This process's PEM client certificate (with ``tls_key``); its common name is
    its user name at the broker: ``probe-<I>of<N>`` for shard I/N, ``detector``."""
    tls_key: Path | None = None
    """The certificate's unencrypted PEM private key, readable by its owner only."""
    topic_prefix: str = "nms/v1"
    session_expiry: Duration = timedelta(hours=1)
    """How long the broker keeps queueing for the detector while no detector is connected."""
    buffer_batches: int = Field(default=2000, ge=1, le=1_000_000)
    """Messages a probe worker keeps while the broker is unreachable (oldest dropped)."""
    heartbeat: Duration = timedelta(seconds=5)
    """How often a probe worker says it is alive."""

    @model_validator(mode="before")
    @classmethod
    def _credentials_out_of_url(cls, data: Any) -> Any:
        # Before anything else sees the URL: no error message, `config show` or log
        # line shows its password, because from here on it is not in the URL.
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        parts = urlsplit(data["url"])
        if "@" not in parts.netloc:
            return data
        userinfo, _, host = parts.netloc.rpartition("@")
        user, has_password, password = userinfo.partition(":")
        if data.get("username") is not None or data.get("password") is not None:
            return data  # given twice: the url's check says so, without the password
        moved = {**data, "url": urlunsplit(parts._replace(netloc=host))}
        moved["username"] = unquote(user)
        if has_password:
            moved["password"] = unquote(password)
        return moved

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        if url is not None:
            if "@" in urlsplit(url).netloc:
                raise ValueError(
                    f"{masked(url)!r}: a user in the url and in bus.username or bus.password; "
                    "give them in one place"
                )
            check_mqtt_url(url)
        return url

    @field_validator("tls_ca", "tls_cert")
    @classmethod
    def _check_readable(cls, path: Path | None) -> Path | None:
        if path is not None:
            check_file(path)
        return path

    @field_validator("tls_key")
    @classmethod
    def _check_private(cls, path: Path | None) -> Path | None:
        if path is not None:
            check_file(path, secret=True)
        return path

    @model_validator(mode="after")
    def _check_together(self) -> BusSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both or neither")
        tls = self.tls_ca is not None or self.tls_cert is not None
        if tls and not (self.url or "").startswith("mqtts://"):
            raise ValueError("tls_ca, tls_cert, tls_key: only for an mqtts:// url")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs username")
        return self

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


class InventorySettings(_Section):
    path: Path | None = None
    watch_interval: Duration = timedelta(seconds=5)
    """How often the inventory file is checked for changes (SIGHUP reloads at once)."""


class OrganisationSettings(_Section):
    """The support organisation (teams, members, routing, on-call, escalation)."""

    file: Path | None = None
    """The organisation YAML file; unset: no teams (cases get none). Reloaded with the
    inventory (on change and on SIGHUP); a bad file is refused, the running one kept."""


class MetricsSettings(_Section):
    """What ``/metrics`` exports (``nms run`` and ``nms detector``)."""

    per_ntu: Literal["all", "not_up", "none"] = "all"
    """Which NTUs get per-NTU series (about 12 each): every NTU, only those not up
    (suspect, down, recovering, unreachable) or with an open incident, or none. Fleet
    aggregates are always exported."""


class LogSettings(_Section):
    level: str = "info"

    @field_validator("level")
    @classmethod
    def _check_level(cls, level: str) -> str:
        if level.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return level.lower()


EventLoop = Literal["uvloop", "asyncio"]
"""The values of ``runtime.event_loop``."""


class RuntimeSettings(_Section):
    """How the long-running processes (``nms run``, ``probe``, ``detector``, ``api``) run."""

    event_loop: EventLoop = "uvloop"
    """``uvloop`` (libuv: less CPU per request and per probe) or ``asyncio`` (the
    standard library's loop: the way back, should uvloop misbehave somewhere)."""
    gc_threshold: int = Field(default=10_000, ge=100, le=10_000_000)
    """Net new objects between two passes of Python's garbage collector over the
    youngest objects (Python's own default: 700; the older generations keep theirs).
    Every probe result replaces a few of its NTU's state objects: at 700 the collector
    ran so often, and its full passes over every object so often, that it took 15 %
    of the detector's CPU at 100,000 NTUs. Cyclic garbage waits for at most this many
    new objects (a few MB)."""


class SecretsSettings(_Section):
    """The keys that encrypt secrets at rest (``nms.app.secrets``)."""

    key: SecretStr | None = None
    """The current key; best given as NMS_SECRETS__KEY (make one: nms secrets generate-key)."""
    previous_keys: list[SecretStr] = Field(default_factory=list)
    """Older keys, still accepted for decryption during a rotation."""
    key_file: Path | None = None
    """File with one key a line, the current first; mode 0600. Default with SQLite:
    ``<database file>.key``, created on first start."""


def _open_encrypted(value: Any, box: SecretBox | None, path: tuple[str, ...]) -> Any:
    """``value`` with every ``enc:`` string in it decrypted (settings input, any depth)."""
    if isinstance(value, dict):
        return {k: _open_encrypted(v, box, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_open_encrypted(v, box, (*path, str(i))) for i, v in enumerate(value)]
    if isinstance(value, SecretStr):
        opened = _open_encrypted(value.get_secret_value(), box, path)
        return SecretStr(opened)
    if not isinstance(value, str) or not value.startswith(ENC_PREFIX):
        return value
    key = ".".join(path)
    env = "NMS_" + "__".join(path).upper()
    where = f"environment {env}" if env in os.environ else key
    if box is None:
        raise ValueError(
            f"{where}: encrypted (enc:...) but no secret key is configured "
            "(secrets.key_file or NMS_SECRETS__KEY)"
        )
    try:
        return box.decrypt(value)
    except SecretDecryptError:
        raise ValueError(
            f"{where}: cannot decrypt: not made with any configured secret key "
            "(wrong key, or the key it was made with is no longer configured)"
        ) from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NMS_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    detector: DetectorSettings = DetectorSettings()
    probes: ProbeSettings = ProbeSettings()
    cases: CaseSettings = CaseSettings()
    notifications: NotificationSettings = NotificationSettings()
    mail: MailSettings = MailSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    audit: AuditSettings = AuditSettings()
    attachments: AttachmentSettings = AttachmentSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    board: BoardSettings = BoardSettings()
    bus: BusSettings = BusSettings()
    cluster: ClusterSettings = ClusterSettings()
    inventory: InventorySettings = InventorySettings()
    organisation: OrganisationSettings = OrganisationSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    secrets: SecretsSettings = SecretsSettings()

    @model_validator(mode="before")
    @classmethod
    def _decrypt(cls, data: Any) -> Any:
        # Before the sections validate: an ``enc:`` URL must open before it is parsed.
        if not isinstance(data, dict):
            return data
        from nms.app.secrets import box_for, keys_from_raw

        try:
            box = box_for(keys_from_raw(data, DatabaseSettings().url))
        except SecretKeyError as exc:
            raise ValueError(str(exc)) from None
        return {
            name: value if name == "secrets" else _open_encrypted(value, box, (name,))
            for name, value in data.items()
        }

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
        if not loc:
            # Whole-settings checks (encrypted values) name their key themselves.
            lines.append(message)
            continue
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
