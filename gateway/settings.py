"""Environment -> Settings. The only module that reads `os.environ`.

Provider rows name the environment variables that hold their keys and base
URLs (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, ...); those are resolved through
`Settings.env`, a copy of the environment taken here, so nothing else reads it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

KiB = 1024
MiB = 1024 * KiB


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _zone(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name) or "UTC"
    try:
        ZoneInfo(raw)
    except (ValueError, ZoneInfoNotFoundError):
        raise SettingsError(
            f"{name} must be an IANA time zone (Europe/Paris), got {raw!r}"
        ) from None
    return raw


def _webhook_url(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name) or ""
    if raw and not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http:// or https:// URL")
    return raw


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _named_keys(raw: str) -> Mapping[str, str]:
    """ "name=key,name=key" -> {name: key}; names are short words, keys long enough."""
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        name, _, key = entry.partition("=")
        name, key = name.strip(), key.strip()
        if not name.isidentifier() or name == "admin" or len(key) < 16:
            raise SettingsError(
                "GATEWAY_ADMIN_KEYS is name=key,... with word names (not 'admin') "
                "and keys of at least 16 characters"
            )
        if name in keys or key in keys.values():
            raise SettingsError(f"GATEWAY_ADMIN_KEYS names '{name}' or its key twice")
        keys[name] = key
    return MappingProxyType(keys)


def _cron(raw: str) -> str:
    from gateway.ops.cron import Cron, CronError

    if raw.strip().lower() == "off":
        return "off"
    try:
        Cron.parse(raw)
    except CronError as exc:
        raise SettingsError(f"GATEWAY_SYNC_CRON: {exc}") from None
    return raw.strip()


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    db_path: Path | None = None  # defaults to data_dir / "gateway.db"
    cache_ttl_seconds: float = 600.0
    # How often to retry the store while serving built-in defaults.
    store_retry_seconds: float = 5.0
    admin_key: str = field(
        default="", repr=False
    )  # from GATEWAY_ADMIN_KEY; else the file data_dir/admin_key
    secret_key: str = field(default="", repr=False)  # GATEWAY_SECRET_KEY: Fernet key
    # More admin keys, by name (GATEWAY_ADMIN_KEYS="alice=...,bob=..."); the main one is "admin".
    admin_keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    access_log: bool = True
    console_session_seconds: int = 8 * 3600  # how long a console sign-in lasts
    budget_zone: str = "UTC"  # where budgets' days, weeks and months begin (IANA name)
    alert_webhook_url: str = ""  # where budget and balance alerts are POSTed ("": nowhere)
    alert_webhook_secret: str = ""  # the HMAC-SHA256 key their signatures use
    ledger_max_batch: int = 512
    ledger_sync: str = "normal"  # "normal" (survives a process crash) or "full" (a power loss)
    # How long a ledger write waits for another connection's lock before its batch fails.
    ledger_busy_timeout: float = 5.0
    max_retry_wait: float = 2.0  # longest Retry-After honoured before trying the same model again
    cooldown_failures: int = 3  # failures of one provider within the window...
    cooldown_window: float = 60.0
    cooldown_seconds: float = 30.0  # ...skip it for this long
    upstream_connect_timeout: float = 10.0
    # Seconds an upstream may stay silent: before its first byte and between chunks.
    upstream_read_timeout: float = 300.0
    upstream_total_timeout: float = 600.0
    sync_cron: str = "0 2 * * *"  # when model discovery runs; "off" for never
    store: str = "sqlite"  # "sqlite" (one instance) or "firestore" (several)
    firestore_project: str = ""
    firestore_emulator_host: str = ""  # host:port of a Firestore emulator, for tests
    ledger_flush_seconds: float = 1.0  # Firestore: how often the outbox is shipped
    balance_sync_seconds: float = 2.0  # Firestore: how often balances are re-read
    # Firestore: the longest a balance or key-spend read on the request path (and
    # each ledger shipment) may take before it fails (503 store_unavailable).
    store_timeout_seconds: float = 5.0
    # Firestore: paid requests are admitted only while the last balance resync and
    # the oldest unshipped outbox row are younger than this.
    firestore_stale_seconds: float = 10.0
    # "database": the router config and profiles from the store; "builtin": the
    # built-in ones, whatever the store says (an instant rollback of router tuning).
    router_source: str = "database"
    # Limits at the edges (README: Limits). A timeout of 0 means none.
    max_body_bytes: int = 32 * MiB
    body_timeout: float = 30.0  # from a request's headers to its body's last byte
    max_header_bytes: int = 16 * KiB  # the request line and all headers together
    header_timeout: float = 10.0  # for a connection's next request head to arrive whole
    max_connections: int = 0  # open client connections; 0: derived from the open-file limit
    upstream_max_body_bytes: int = 64 * MiB  # a provider's answer, decoded
    upstream_max_line_bytes: int = 8 * MiB  # one line of a provider's stream
    upstream_max_stream_bytes: int = 256 * MiB  # a provider's whole stream, decoded
    tiktoken_cache_dir: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "data-gym-cache"
    )
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / "gateway.db"

    @property
    def outbox(self) -> Path:
        """Firestore: the local durable outbox of ledger rows not yet shipped."""
        return self.data_dir / "ledger-outbox.db"

    @property
    def demo_key_file(self) -> Path:
        return self.data_dir / "demo_api_key"

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin_key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("GATEWAY_DATA_DIR") or "data").expanduser()
        db = env.get("GATEWAY_DB_PATH")
        port_raw = env.get("GATEWAY_PORT") or "8080"
        try:
            port = int(port_raw)
        except ValueError:
            raise SettingsError(f"GATEWAY_PORT must be an integer, got {port_raw!r}") from None
        # tiktoken's own rule for its cache directory, so that what we place
        # there is what tiktoken finds.
        tk_dir = env.get("TIKTOKEN_CACHE_DIR") or env.get("DATA_GYM_CACHE_DIR")
        tiktoken_dir = Path(tk_dir) if tk_dir else Path(tempfile.gettempdir()) / "data-gym-cache"
        store = _choice(env, "GATEWAY_STORE", ("sqlite", "firestore"))
        flush = _number(env, "GATEWAY_LEDGER_FLUSH_SECONDS", 1.0, minimum=0.05)
        balance_sync = _number(env, "GATEWAY_BALANCE_SYNC_SECONDS", 2.0, minimum=0.1)
        stale = _number(env, "GATEWAY_FIRESTORE_STALE_SECONDS", 10.0, minimum=0.1)
        if stale <= max(flush, balance_sync):
            # Else a healthy instance would refuse requests between two resyncs.
            raise SettingsError(
                "GATEWAY_FIRESTORE_STALE_SECONDS must be longer than "
                "GATEWAY_LEDGER_FLUSH_SECONDS and GATEWAY_BALANCE_SYNC_SECONDS"
            )
        if env.get("GATEWAY_ALERT_WEBHOOK_URL") and not env.get("GATEWAY_ALERT_WEBHOOK_SECRET"):
            raise SettingsError("GATEWAY_ALERT_WEBHOOK_URL needs GATEWAY_ALERT_WEBHOOK_SECRET")
        project = env.get("GATEWAY_FIRESTORE_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or ""
        if store == "firestore" and not project:
            raise SettingsError("GATEWAY_STORE=firestore needs GATEWAY_FIRESTORE_PROJECT")
        return cls(
            data_dir=data_dir,
            host=env.get("GATEWAY_HOST") or "127.0.0.1",
            port=port,
            db_path=Path(db).expanduser() if db else None,
            cache_ttl_seconds=_number(env, "GATEWAY_CACHE_TTL_SECONDS", 600.0, minimum=1),
            store_retry_seconds=_number(env, "GATEWAY_STORE_RETRY_SECONDS", 5.0, minimum=0.1),
            admin_key=env.get("GATEWAY_ADMIN_KEY", ""),
            admin_keys=_named_keys(env.get("GATEWAY_ADMIN_KEYS", "")),
            secret_key=env.get("GATEWAY_SECRET_KEY", ""),
            access_log=_flag(env, "GATEWAY_ACCESS_LOG", True),
            budget_zone=_zone(env, "GATEWAY_BUDGET_TIMEZONE"),
            alert_webhook_url=_webhook_url(env, "GATEWAY_ALERT_WEBHOOK_URL"),
            alert_webhook_secret=env.get("GATEWAY_ALERT_WEBHOOK_SECRET", ""),
            console_session_seconds=_integer(
                env, "GATEWAY_CONSOLE_SESSION_SECONDS", 8 * 3600, minimum=60
            ),
            ledger_max_batch=int(_number(env, "GATEWAY_LEDGER_MAX_BATCH", 512, minimum=1)),
            ledger_sync=_choice(env, "GATEWAY_LEDGER_SYNC", ("normal", "full")),
            ledger_busy_timeout=_number(
                env, "GATEWAY_LEDGER_BUSY_TIMEOUT_SECONDS", 5.0, minimum=0.001
            ),
            max_retry_wait=_number(env, "GATEWAY_MAX_RETRY_WAIT_SECONDS", 2.0),
            cooldown_failures=int(_number(env, "GATEWAY_COOLDOWN_FAILURES", 3, minimum=1)),
            cooldown_window=_number(env, "GATEWAY_COOLDOWN_WINDOW_SECONDS", 60.0),
            cooldown_seconds=_number(env, "GATEWAY_COOLDOWN_SECONDS", 30.0),
            upstream_connect_timeout=_number(env, "GATEWAY_UPSTREAM_CONNECT_TIMEOUT", 10.0),
            upstream_read_timeout=_number(env, "GATEWAY_UPSTREAM_READ_TIMEOUT", 300.0),
            upstream_total_timeout=_number(env, "GATEWAY_UPSTREAM_TOTAL_TIMEOUT", 600.0),
            router_source=_choice(env, "GATEWAY_ROUTER_CONFIG", ("database", "builtin")),
            store=store,
            sync_cron=_cron(env.get("GATEWAY_SYNC_CRON") or "0 2 * * *"),
            firestore_project=project,
            firestore_emulator_host=(
                env.get("GATEWAY_FIRESTORE_EMULATOR_HOST")
                or env.get("FIRESTORE_EMULATOR_HOST")
                or ""
            ),
            ledger_flush_seconds=flush,
            balance_sync_seconds=balance_sync,
            store_timeout_seconds=_number(env, "GATEWAY_STORE_TIMEOUT_SECONDS", 5.0, minimum=0.05),
            firestore_stale_seconds=stale,
            max_body_bytes=_integer(env, "GATEWAY_MAX_BODY_BYTES", 32 * MiB, minimum=1),
            body_timeout=_number(env, "GATEWAY_BODY_TIMEOUT_SECONDS", 30.0),
            max_header_bytes=_integer(env, "GATEWAY_MAX_HEADER_BYTES", 16 * KiB, minimum=1024),
            header_timeout=_number(env, "GATEWAY_HEADER_TIMEOUT_SECONDS", 10.0),
            max_connections=_integer(env, "GATEWAY_MAX_CONNECTIONS", 0),
            upstream_max_body_bytes=_integer(
                env, "GATEWAY_UPSTREAM_MAX_BODY_BYTES", 64 * MiB, minimum=1024
            ),
            upstream_max_line_bytes=_integer(
                env, "GATEWAY_UPSTREAM_MAX_LINE_BYTES", 8 * MiB, minimum=1024
            ),
            upstream_max_stream_bytes=_integer(
                env, "GATEWAY_UPSTREAM_MAX_STREAM_BYTES", 256 * MiB, minimum=1024
            ),
            tiktoken_cache_dir=tiktoken_dir,
            env=MappingProxyType(env),
        )
