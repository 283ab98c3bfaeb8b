"""Configuration: config.yaml merged with EXPERTCONNECT_<SECTION>_<KEY> overrides, typed and
validated once at start-up. A bad or unknown key stops start-up with a message naming it."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ENV_PREFIX = "EXPERTCONNECT_"
# Environment variables of ours that are not config keys: the state directory, and the config
# file the command line uses when --config is not given.
ENV_VAR_DIR = f"{ENV_PREFIX}VAR_DIR"
ENV_CONFIG = f"{ENV_PREFIX}CONFIG"


class ConfigError(Exception):
    """Raised for a config file or override that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_size: int = 65536
    trusted_proxies: tuple = ()
    event_loop: str = "uvloop"
    cors_origins: tuple = ()
    # Who may read GET /metrics (everyone else gets the 404 of an unknown URL): loopback.
    metrics_allow: tuple = ("127.0.0.0/8", "::1")
    idle_timeout: float = 30.0
    body_timeout: float = 30.0


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str = ""
    name: str = "expertconnect"
    pool_min: int = 2
    pool_max: int = 10
    acquire_timeout: float = 5.0
    command_timeout: float = 10.0


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str = ""
    token_ttl_seconds: int = 86400
    bcrypt_rounds: int = 12
    bcrypt_threads: int = 0
    user_cache_size: int = 10000


@dataclass(frozen=True)
class RateLimitConfig:
    auth_per_minute: int = 10
    default_per_minute: int = 60
    registrations_per_hour: int = 20
    purchases_per_day: int = 50


@dataclass(frozen=True)
class CreditsConfig:
    initial_free: int = 1
    price_usd: Decimal = Decimal("1.00")


@dataclass(frozen=True)
class RealtimeConfig:
    backend: str = "memory"
    max_sockets_per_user: int = 10
    max_message_length: int = 5000
    max_frame_bytes: int = 65536
    max_buffered_bytes: int = 1048576
    ping_interval: float = 20.0
    ping_timeout: float = 15.0
    retention_days: int = 30
    allowed_origins: tuple = ()


@dataclass(frozen=True)
class MeetingsConfig:
    pending_ttl_hours: int = 48
    expiry_interval_seconds: float = 60.0
    max_open_requests: int = 20
    auto_complete_hours: int = 24
    reminder_minutes: int = 15


@dataclass(frozen=True)
class IdempotencyConfig:
    retention_hours: int = 24


@dataclass(frozen=True)
class LoggingConfig:
    format: str = "text"
    level: str = "INFO"


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    credits: CreditsConfig = field(default_factory=CreditsConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    meetings: MeetingsConfig = field(default_factory=MeetingsConfig)
    idempotency: IdempotencyConfig = field(default_factory=IdempotencyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # Where generated state lives: the JWT secret and the private PostgreSQL cluster. A relative
    # path is resolved against the config file's directory, never the current directory, so a
    # program started from elsewhere finds the same cluster instead of creating an empty one.
    var_dir: Path = Path("var")
    # The file this was loaded from (None: built-in defaults only); where it came from is no
    # part of what the configuration says, so equality ignores it.
    source: Path | None = field(default=None, compare=False)


# Checks beyond the type: key -> (predicate, what a good value looks like).
_RULES = {
    "server.port": (lambda v: 0 <= v <= 65535, "a port number 0..65535"),
    "server.max_body_size": (lambda v: v >= 1024, "at least 1024 bytes"),
    "server.event_loop": (lambda v: v in ("uvloop", "asyncio"), "uvloop or asyncio"),
    "server.idle_timeout": (lambda v: 0 < v <= 3600, "more than 0 and at most 3600 seconds"),
    "server.body_timeout": (lambda v: 0 < v <= 3600, "more than 0 and at most 3600 seconds"),
    "server.trusted_proxies": (
        lambda v: all(_is_network(x) for x in v),
        "a list of IP addresses or networks",
    ),
    "server.metrics_allow": (
        lambda v: all(_is_network(x) for x in v),
        "a list of IP addresses or networks",
    ),
    "database.pool_min": (lambda v: v >= 1, "at least 1"),
    "database.pool_max": (lambda v: v >= 1, "at least 1"),
    "database.acquire_timeout": (lambda v: v > 0, "a positive number of seconds"),
    "database.command_timeout": (lambda v: v > 0, "a positive number of seconds"),
    # RFC 7518: an HS256 key shorter than the hash (32 bytes) weakens it.
    "auth.jwt_secret": (
        lambda v: v == "" or len(v.encode()) >= 32,
        "empty (generated) or at least 32 bytes",
    ),
    "auth.token_ttl_seconds": (lambda v: v >= 60, "at least 60 seconds"),
    "auth.user_cache_size": (lambda v: v >= 0, "zero (off) or more"),
    "auth.bcrypt_threads": (lambda v: v >= 0, "zero (cores - 1) or more"),
    "auth.bcrypt_rounds": (lambda v: 4 <= v <= 31, "an integer 4..31"),
    "rate_limits.auth_per_minute": (lambda v: v >= 1, "at least 1"),
    "rate_limits.default_per_minute": (lambda v: v >= 1, "at least 1"),
    "rate_limits.registrations_per_hour": (lambda v: v >= 1, "at least 1"),
    "rate_limits.purchases_per_day": (lambda v: v >= 1, "at least 1"),
    "credits.initial_free": (lambda v: v >= 0, "zero or more"),
    "realtime.backend": (lambda v: v in ("memory", "postgres"), "memory or postgres"),
    "realtime.max_sockets_per_user": (lambda v: v >= 1, "at least 1"),
    "realtime.max_message_length": (lambda v: v >= 1, "at least 1"),
    "realtime.max_frame_bytes": (lambda v: v >= 1024, "at least 1024 bytes"),
    "realtime.max_buffered_bytes": (lambda v: v >= 65536, "at least 65536 bytes"),
    "realtime.ping_interval": (lambda v: v > 0, "a positive number of seconds"),
    "realtime.ping_timeout": (lambda v: v > 0, "a positive number of seconds"),
    "realtime.retention_days": (lambda v: v >= 1, "at least 1 day"),
    "meetings.pending_ttl_hours": (lambda v: 1 <= v <= 8760, "1..8760 hours (a year)"),
    "meetings.expiry_interval_seconds": (lambda v: v > 0, "a positive number of seconds"),
    "logging.format": (lambda v: v in ("text", "json"), "text or json"),
    "logging.level": (
        lambda v: v.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
        "DEBUG, INFO, WARNING or ERROR",
    ),
    "meetings.max_open_requests": (lambda v: 1 <= v <= 10000, "1..10000"),
    "meetings.auto_complete_hours": (lambda v: 0 <= v <= 8760, "0..8760 hours (a year)"),
    "meetings.reminder_minutes": (lambda v: 0 <= v <= 10080, "0 (off)..10080 minutes (a week)"),
    # At least an hour: a client retries a lost answer within seconds or minutes, not never.
    "idempotency.retention_hours": (lambda v: 1 <= v <= 8760, "1..8760 hours (a year)"),
    "credits.price_usd": (
        lambda v: v > 0 and v == v.quantize(Decimal("0.01")),
        "a positive amount with at most two decimals",
    ),
}


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Turn a YAML or environment value into `kind`, or raise ConfigError naming `key`."""
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, bool):
                return value
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError(value)
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is Decimal:
            if isinstance(value, (bool, float)):
                raise ValueError('write money as a string, e.g. "1.00"')
            return Decimal(str(value))
        if kind is tuple:
            # A YAML list, or a comma-separated environment value.
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(value)
            return tuple(value)
        if kind is str:
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
    except (ValueError, TypeError, InvalidOperation):
        raise ConfigError(f"config key {key}: expected {kind.__name__}, got {value!r}") from None
    raise ConfigError(f"config key {key}: unsupported type {kind}")


def _field_types(cls: type[Any]) -> dict[str, type]:
    hints = {
        "int": int,
        "str": str,
        "float": float,
        "bool": bool,
        "Decimal": Decimal,
        "tuple": tuple,
    }
    # The annotations are strings here (from __future__ import annotations).
    return {f.name: hints[str(f.type)] for f in dataclasses.fields(cls)}


def _check_dsn(dsn: str) -> None:
    """A libpq URL we can use, or ConfigError: asyncpg's own error for a malformed one is a
    traceback at the first connection."""
    if not dsn:
        return
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            "config key database.dsn: must be a URL like "
            "postgresql://user:password@host:5432/dbname (or empty for the private cluster)"
        )
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError("config key database.dsn: the port is not a number 1..65535") from None
    if not (parts.hostname or "host=" in parts.query):
        raise ConfigError("config key database.dsn: names no host (nor a ?host= socket directory)")


def _check_environment(environ: Mapping[str, str], sections: dict[str, type[Any]]) -> None:
    """An EXPERTCONNECT_* variable that is no config key is a typo that would be silently
    ignored: refuse it, as an unknown YAML key is refused."""
    known = {ENV_VAR_DIR, ENV_CONFIG}
    for section, cls in sections.items():
        known.update(f"{ENV_PREFIX}{section}_{key}".upper() for key in _field_types(cls))
    for name in environ:
        if name.startswith(ENV_PREFIX) and name not in known:
            raise ConfigError(f"unknown environment variable {name}: no such config key")


def load_config(
    path: str | Path | None = "config.yaml", environ: Mapping[str, str] | None = None
) -> Config:
    environ = os.environ if environ is None else environ
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")

    sections = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "var_dir"}
    section_classes = {
        "server": ServerConfig,
        "database": DatabaseConfig,
        "auth": AuthConfig,
        "rate_limits": RateLimitConfig,
        "credits": CreditsConfig,
        "realtime": RealtimeConfig,
        "meetings": MeetingsConfig,
        "idempotency": IdempotencyConfig,
        "logging": LoggingConfig,
    }
    for name in raw:
        if name not in sections and name != "var_dir":
            raise ConfigError(f"unknown config section: {name}")

    built = {}
    for name, cls in section_classes.items():
        given = raw.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"config section {name} must be a mapping")
        types = _field_types(cls)
        for key in given:
            if key not in types:
                raise ConfigError(f"unknown config key: {name}.{key}")
        values = {}
        for key, kind in types.items():
            env_name = f"{ENV_PREFIX}{name}_{key}".upper()
            if env_name in environ:
                value = _coerce(f"{name}.{key} ({env_name})", environ[env_name], kind)
            elif key in given:
                value = _coerce(f"{name}.{key}", given[key], kind)
            else:
                continue
            rule = _RULES.get(f"{name}.{key}")
            if rule and not rule[0](value):
                raise ConfigError(f"config key {name}.{key}: must be {rule[1]}, got {value!r}")
            values[key] = value
        built[name] = cls(**values)

    _check_environment(environ, section_classes)
    if built["database"].pool_min > built["database"].pool_max:
        raise ConfigError("config key database.pool_min: must not exceed database.pool_max")
    _check_dsn(built["database"].dsn)
    realtime = built["realtime"]
    if realtime.ping_timeout > realtime.ping_interval:
        raise ConfigError(
            f"config key realtime.ping_timeout: must not exceed realtime.ping_interval "
            f"({realtime.ping_timeout:g} > {realtime.ping_interval:g})"
        )
    var_dir = Path(environ.get(ENV_VAR_DIR, raw.get("var_dir", "var")))
    source = Path(path).resolve() if path is not None else None
    if not var_dir.is_absolute():
        var_dir = (source.parent if source else Path.cwd()) / var_dir
    return Config(**built, var_dir=var_dir, source=source)
