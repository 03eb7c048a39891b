"""Configuration: a TOML file plus environment variables (and `.env`), validated by msgspec.

Errors name the file, the field and the problem, e.g.
`automata.toml: services.notifier.metrics_port: Expected `int`, got `str``.
Unknown keys are errors, never silently dropped.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from shared.logs import register_secret
from shared.urls import RedisCredentialsError, url_passwords, with_credentials

DEFAULT_CONFIG = "automata.toml"


class ConfigError(ValueError):
    """A configuration problem, with the file and the field it is in."""


class Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A config section. The values of its `SECRETS` never show in repr or str, so a config
    printed, logged, or shown in a traceback or a test failure keeps them; the fields stay
    plain strings for the code that uses them."""

    SECRETS: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self._shown(name)}" for name in self.__struct_fields__)
        return f"{type(self).__name__}({shown})"

    def _shown(self, name: str) -> str:
        value = getattr(self, name)
        return "'***'" if name in self.SECRETS and value else repr(value)


class Credentials(Base, frozen=True):
    """An API key pair."""

    SECRETS = frozenset({"api_key", "api_secret"})

    api_key: str
    api_secret: str


VenueKind = Literal["sim", "binance", "bybit"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class VenueConfig(Base, frozen=True):
    """One venue the services trade on or read from.

    kind `sim` is the paper venue (speaking `protocol`); `binance` / `bybit` are the real ones,
    on `testnet` (Binance Spot Testnet, Bybit Demo Trading) or main net."""

    kind: VenueKind = "sim"
    protocol: Literal["binance", "bybit"] = "binance"
    base_url: str = ""  # sim: http://127.0.0.1:$SIM_PORT (8800); empty = the library's default for the venue
    testnet: bool = False
    quote_asset: str = "USDT"
    # the order gateway emulates order lists here even where the venue has them natively
    # (services/order_gateway/emulated_oco.py, emulated_oto.py); venues without them are always emulated
    emulate_lists: bool = False


class ServiceConfig(Base, frozen=True):
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 0  # 0 = any free port (published in the heartbeat key)
    log_level: str = "INFO"


class ServicesConfig(Base, frozen=True):
    market_gateway: ServiceConfig = ServiceConfig(metrics_port=9101)
    order_gateway: ServiceConfig = ServiceConfig(metrics_port=9102)
    strategy_runner: ServiceConfig = ServiceConfig(metrics_port=0)
    notifier: ServiceConfig = ServiceConfig(metrics_port=9104)
    exchange_sim: ServiceConfig = ServiceConfig(metrics_port=9105)
    ledger: ServiceConfig = ServiceConfig(metrics_port=9106)
    web: ServiceConfig = ServiceConfig(metrics_port=9107)


class BusConfig(Base, frozen=True):
    claim_idle_ms: Annotated[int, msgspec.Meta(ge=1000)] = 60_000
    max_deliveries: Annotated[int, msgspec.Meta(ge=1)] = 5
    read_count: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100


class RedisConfig(Base, frozen=True):
    url: str = "redis://127.0.0.1:6379/0"

    def _shown(self, name: str) -> str:
        from shared.urls import safe_url

        return repr(safe_url(self.url)) if name == "url" else super()._shown(name)


Interval = Literal[
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w"
]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{2,30}$")]


class MarketFeed(Base, frozen=True):
    """What the market gateway reads from one venue: kline streams (every symbol x interval) and
    book tickers. Several feeds of one venue share that venue's single socket."""

    venue: str
    symbols: Annotated[list[Symbol], msgspec.Meta(min_length=1)]
    intervals: Annotated[list[Interval], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["1m"]
    )
    book_tickers: list[Symbol] = []


class MarketGatewayConfig(Base, frozen=True):
    """`[market_gateway]`: feeds (`[[market_gateway.feeds]]`), warm-up, stream lengths, stall detection."""

    feeds: list[MarketFeed] = []
    warmup: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 500  # candles loaded into an empty stream
    candles_maxlen: Annotated[int, msgspec.Meta(ge=100)] = 100_000
    book_maxlen: Annotated[int, msgspec.Meta(ge=10)] = 10_000
    stall_factor: Annotated[float, msgspec.Meta(gt=0)] = 3.0  # stalled: no message for K x interval
    ws_down_alert_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0  # socket down this long: stalled
    rest_poll_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # REST kline polling while the socket is down
    weight_per_minute: Annotated[int, msgspec.Meta(ge=10)] = 1200  # REST request weight we allow ourselves


class OrderGatewayConfig(Base, frozen=True):
    """Order gateway tuning; the defaults suit the real venues."""

    venues: list[str] = []  # venues this process serves; empty = every configured venue
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    recv_window_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] = 5000
    poll_every_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    balance_every_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    weight_limit: Annotated[int, msgspec.Meta(ge=1)] = 6000
    # one active gateway per venue (og:lease:{venue}); a standby takes over this long after the
    # holder died. Keep it above recv_window_ms: a holder frozen past its lease then cannot
    # have a request it signed before the freeze accepted.
    lease_ms: Annotated[int, msgspec.Meta(ge=200, le=600_000)] = 10_000
    # how often the gateway looks for command streams of bots that appeared after it started
    rescan_every_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 5.0

    def __post_init__(self) -> None:
        if self.lease_ms <= self.recv_window_ms:
            raise ValueError(
                f"lease_ms ({self.lease_ms}) must be above recv_window_ms ({self.recv_window_ms}): a "
                "gateway frozen past its lease could otherwise still have a signed order accepted"
            )


ChannelName = Literal["telegram", "webhook", "console"]


class TelegramConfig(Base, frozen=True):
    """`[notifier.telegram]`: on when a token is set (better in TELEGRAM_BOT_TOKEN than in the file).

    `chat_ids` receive the notifications. Commands are obeyed only from the users in
    `allowed_users` (Telegram user ids), written in one of `chat_ids` or in the user's own private
    chat with the bot; empty: every command is refused (the notifier warns at start)."""

    SECRETS = frozenset({"token"})

    token: str = ""
    chat_ids: list[int] = []
    allowed_users: list[int] = []  # or TELEGRAM_ALLOWED_USERS
    base_url: str = "https://api.telegram.org"  # a local fake Bot API in tests
    per_chat_rate: Annotated[float, msgspec.Meta(gt=0, le=30)] = 1.0  # messages a second, per chat
    commands: bool = True  # long-poll getUpdates for /status, /pause BOT, ...
    poll_timeout_s: Annotated[int, msgspec.Meta(ge=0, le=50)] = 25
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0


class WebhookConfig(Base, frozen=True):
    """`[notifier.webhook]`: a JSON POST per notification, signed when `secret` is set (headers
    `X-Automata-Timestamp` and `X-Automata-Signature: v1=<hex HMAC of "timestamp.body">`, see
    services/notifier/webhook.py); the notifier warns at start when a url has no secret. The URL
    is masked too: a Slack or Discord webhook URL is itself the credential."""

    SECRETS = frozenset({"url", "secret"})

    url: str = ""
    secret: str = ""  # or NOTIFIER_WEBHOOK_SECRET
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0


class ConsoleConfig(Base, frozen=True):
    enabled: bool = True


class NotifierConfig(Base, frozen=True):
    """`[notifier]`: channels, routing of kinds to channels, retries. See services/notifier."""

    telegram: TelegramConfig = TelegramConfig()
    webhook: WebhookConfig = WebhookConfig()
    console: ConsoleConfig = ConsoleConfig()
    # kind (or glob like "bot_*", or "*" for the rest) -> channels; empty: every kind to every channel
    routes: dict[str, list[ChannelName]] = {}
    retry_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    retry_max_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    dedupe_ttl_s: Annotated[int, msgspec.Meta(ge=60)] = 7 * 24 * 3600
    backfill_s: Annotated[int, msgspec.Meta(ge=0)] = 3600  # a new channel starts this far back in `notify`
    # Redis unreachable this long: the channels are told directly (a refused write: at once)
    redis_alert_after_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0


class LedgerFeed(Base, frozen=True):
    """Candles the ledger keeps: every symbol x interval of one venue (streams the market gateway fills)."""

    venue: str
    symbols: Annotated[list[Symbol], msgspec.Meta(min_length=1)]
    intervals: Annotated[list[Interval], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["1m"]
    )


class LedgerConfig(Base, frozen=True):
    """`[ledger]`: where the trading history is kept and what goes in it (shared/ledger).

    `url` empty: DATABASE_URL, else the SQLite file $AUTOMATA_HOME/var/ledger.sqlite3."""

    url: str = ""  # sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB
    candles: list[LedgerFeed] = []  # [[ledger.candles]]: empty = no candles kept
    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 500  # stream entries per DB transaction
    # Retention (services/ledger/retention.py): Redis keeps what recovery needs, the ledger the rest
    retention: bool = True  # trim the streams the ledger has written, delete closed WAL records
    retention_every_s: Annotated[float, msgspec.Meta(ge=1)] = 60.0
    stream_keep_s: Annotated[int, msgspec.Meta(ge=0)] = 3600  # entries younger than this stay
    wal_keep_s: Annotated[int, msgspec.Meta(ge=0)] = 7 * 86400  # closed og:order records younger stay

    def _shown(self, name: str) -> str:
        from shared.urls import safe_url

        return repr(safe_url(self.url)) if name == "url" and self.url else super()._shown(name)


class WebConfig(Base, frozen=True):
    """`[web]`: the dashboard (services/web). On 127.0.0.1 by default; any other host needs a
    token, else the service refuses to start. The token is AUTOMATA_WEB_TOKEN, else the file
    AUTOMATA_WEB_TOKEN_FILE names, else the keystore's WEB_ENTRY, else `token` here. Control actions
    always need the token; `read_only` refuses them all."""

    SECRETS = frozenset({"token"})

    host: str = "127.0.0.1"
    port: Port = 8780
    token: str = ""  # or AUTOMATA_WEB_TOKEN; at least 16 characters
    read_only: bool = False
    origins: list[str] = []  # Origins allowed to send control actions besides the page's own (a proxy)


class AppConfig(Base, frozen=True):
    redis: RedisConfig = RedisConfig()
    bus: BusConfig = BusConfig()
    services: ServicesConfig = ServicesConfig()
    venues: dict[str, VenueConfig] = msgspec.field(default_factory=lambda: {"sim": VenueConfig()})
    keys: dict[str, Credentials] = {}
    keystore: str = ""  # path of the encrypted keystore file, if any
    market_gateway: MarketGatewayConfig = MarketGatewayConfig()
    order_gateway: OrderGatewayConfig = OrderGatewayConfig()
    notifier: NotifierConfig = NotifierConfig()
    ledger: LedgerConfig = LedgerConfig()
    web: WebConfig = WebConfig()


_PATH_RE = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def _explain(exc: msgspec.ValidationError) -> tuple[str, str]:
    """('services.notifier.metrics_port', 'Expected `int`, got `str`') from msgspec's message."""
    text = str(exc)
    match = _PATH_RE.search(text)
    if not match:
        return "", text
    path = (
        match["path"]
        .replace("[...]", "")
        .replace("[", ".")
        .replace("]", "")
        .replace("'", "")
        .replace('"', "")
    )
    return path, text[: match.start()]


def _refuse_nonfinite(value: Any, source: str, path: str) -> None:
    """TOML and JSON can spell nan and inf; no setting means either (an `inf` timeout or
    factor only fails later, far from the file), so they are refused here, by field."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {path or '(top level)'}: {value} is not a finite number")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        _refuse_nonfinite(item, source, f"{path}.{key}" if path else str(key))


def convert(data: dict[str, Any], cls: type[msgspec.Struct], source: str, prefix: str = "") -> Any:
    """msgspec.convert with an error naming the source file and the dotted field path."""
    try:
        _refuse_nonfinite(data, source, prefix)
        return msgspec.convert(data, cls, strict=False)
    except RecursionError:
        raise ConfigError(f"{source}: {prefix or '(top level)'}: nested too deep") from None
    except msgspec.ValidationError as exc:
        path, problem = _explain(exc)
        field = ".".join(p for p in (prefix, path) if p)
        raise ConfigError(f"{source}: {field or '(top level)'}: {problem}") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deep") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


# Which `.env` variables a service takes into its environment, and so which secrets its loaded
# config holds: the exchange keys and the keystore only in the order gateway, the Telegram token
# and webhook secret only in the notifier, DATABASE_URL only in the ledger, none in the strategy runners (they run user code) or
# the market gateway. The CLI (service None) takes every variable.
ENV_COMMON = frozenset(
    {"AUTOMATA_CONFIG", "AUTOMATA_BOTS", "LOG_LEVEL", "LOG_FORMAT", "METRICS_PORT", "REDIS_URL",
     "BINANCE_API_TEST", "BYBIT_DEMO"}
)  # fmt: skip
KEY_HOLDER = "order_gateway"
NOTIFIER = "notifier"
LEDGER = "ledger"
WEB = "web"
WEB_ENTRY = "web"  # the keystore entry holding the dashboard's token (`automata keys web-token`)
# The dashboard's own keystore: its path and password under names of its own, so the password of
# the keystore holding the exchange keys never reaches the web process (its `.env` filter drops
# AUTOMATA_KEYSTORE_PASSWORD); each maps to the keystore's usual variable.
WEB_KEYSTORE_ENV = {
    "AUTOMATA_WEB_KEYSTORE": "AUTOMATA_KEYSTORE",
    "AUTOMATA_WEB_KEYSTORE_PASSWORD": "AUTOMATA_KEYSTORE_PASSWORD",
    "AUTOMATA_WEB_KEYSTORE_PASSWORD_FILE": "AUTOMATA_KEYSTORE_PASSWORD_FILE",
}
SERVICE_ENV: dict[str, frozenset[str]] = {
    KEY_HOLDER: ENV_COMMON
    | {
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
        "BYBIT_API_KEY",
        "BYBIT_API_SECRET",
        "SIM_API_KEY",
        "SIM_API_SECRET",
        "AUTOMATA_KEYSTORE",
        "AUTOMATA_KEYSTORE_PASSWORD",
        "AUTOMATA_KEYSTORE_PASSWORD_FILE",
    },  # fmt: skip
    # DATABASE_URL: /profit, /daily and /trades read the ledger
    NOTIFIER: ENV_COMMON
    | {
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_CHAT_IDS",
        "TELEGRAM_ALLOWED_USERS",
        "NOTIFIER_WEBHOOK_SECRET",
        "DATABASE_URL",
    },
    # the database's URL: the ledger writes it, the notifier reads it (no other service gets it)
    LEDGER: ENV_COMMON | {"DATABASE_URL", "AUTOMATA_HOME"},
    # the dashboard: its own token (or the keystore holding it), and the ledger's URL (it reads the history)
    WEB: ENV_COMMON
    | {
        "AUTOMATA_WEB_TOKEN",
        "AUTOMATA_WEB_TOKEN_FILE",
        "WEB_PORT",
        "DATABASE_URL",
        "AUTOMATA_HOME",
        *WEB_KEYSTORE_ENV,
    },  # fmt: skip
}


def env_allowed(service: str | None) -> frozenset[str] | None:
    """The `.env` variables `service` may take (None: all of them, for the CLI)."""
    return None if service is None else SERVICE_ENV.get(service, ENV_COMMON)


def load_dotenv_file(path: str | os.PathLike[str] = ".env", *, service: str | None = None) -> None:
    """Load `.env` into os.environ without overriding variables already set; a service takes
    only the variables of its allow-list (SERVICE_ENV), so no other secret reaches its process."""
    from dotenv import dotenv_values

    if not Path(path).is_file():
        return
    allowed = env_allowed(service)
    for name, value in dotenv_values(path).items():
        if value is not None and name not in os.environ and (allowed is None or name in allowed):
            os.environ[name] = value


def config_path() -> Path:
    return Path(os.environ.get("AUTOMATA_CONFIG") or DEFAULT_CONFIG)


def check_named_config(environ: Mapping[str, str] | None = None) -> None:
    """A file AUTOMATA_CONFIG names must exist: a mistyped path must not run on the defaults
    (only an unset AUTOMATA_CONFIG with no automata.toml here means "all defaults")."""
    named = (os.environ if environ is None else environ).get("AUTOMATA_CONFIG")
    if named and not Path(named).exists():
        raise ConfigError(f"{named}: file not found (named by AUTOMATA_CONFIG)")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    service: str | None = None,
) -> AppConfig:
    """Read the TOML file (no AUTOMATA_CONFIG and no automata.toml = all defaults; a file
    named but missing is an error), apply the environment, validate.

    With `service`, only that service's `.env` variables are loaded and the secrets it has no
    use for are left out of the config (see SERVICE_ENV)."""
    if env is None:
        load_dotenv_file(service=service)
        env = dict(os.environ)
    if path is None:
        check_named_config()
    cfg_path = Path(path) if path is not None else config_path()
    data: dict[str, Any] = read_toml(cfg_path) if cfg_path.exists() else {}
    if path is not None and not cfg_path.exists():
        raise ConfigError(f"{cfg_path}: file not found")
    # dict sections are checked item by item so an error names the item (msgspec only says `[...]`)
    for section, item_cls in (("venues", VenueConfig), ("keys", Credentials)):
        items = data.get(section)
        if isinstance(items, dict):
            for name, item in items.items():
                convert(item, item_cls, str(cfg_path), prefix=f"{section}.{name}")
    cfg: AppConfig = convert(data, AppConfig, str(cfg_path))
    cfg = _apply_env(cfg, env)
    cfg = _apply_notifier_env(cfg, env, str(cfg_path))
    token = web_token(env) if service in (None, WEB) else ""
    if token:
        cfg = msgspec.structs.replace(cfg, web=msgspec.structs.replace(cfg.web, token=token))
    if service in (None, KEY_HOLDER):
        cfg = _apply_keystore(cfg, cfg_path, env, web=not token)
    elif service == WEB and not token and env.get("AUTOMATA_WEB_KEYSTORE"):
        web_env = {generic: env[own] for own, generic in WEB_KEYSTORE_ENV.items() if own in env}
        cfg = _apply_keystore(cfg, cfg_path, web_env, web=True)
    cfg = _drop_secrets(cfg, service)
    for creds in cfg.keys.values():
        register_secret(creds.api_key)
        register_secret(creds.api_secret)
    register_secret(cfg.notifier.telegram.token)
    register_secret(cfg.notifier.webhook.secret)
    register_secret(cfg.web.token)
    for secret in url_passwords(cfg.ledger.url) + url_passwords(env.get("DATABASE_URL", "")):
        register_secret(secret)
    register_secret(cfg.notifier.webhook.url)  # a Slack or Discord webhook URL is the credential
    return cfg


def web_token(env: Mapping[str, str]) -> str:
    """AUTOMATA_WEB_TOKEN, else the content of the file AUTOMATA_WEB_TOKEN_FILE names (`automata
    run` writes one under var/secrets: the token then is in no process's environment)."""
    if env.get("AUTOMATA_WEB_TOKEN"):
        return env["AUTOMATA_WEB_TOKEN"].strip()
    named = env.get("AUTOMATA_WEB_TOKEN_FILE")
    if not named:
        return ""
    try:
        return Path(named).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"environment: AUTOMATA_WEB_TOKEN_FILE: {named}: cannot read: {exc.strerror}"
        ) from None


def _env_ids(env: dict[str, str], name: str) -> list[int] | None:
    """A comma separated list of integer ids from the environment, None when unset."""
    if not env.get(name):
        return None
    try:
        return [int(part) for part in env[name].split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"environment: {name}: expected comma separated integers") from None


def _drop_secrets(cfg: AppConfig, service: str | None) -> AppConfig:
    """Blank the secrets `service` does not use: keys outside the order gateway, the notifier's
    token and webhook secret outside the notifier, the dashboard's token outside it (the CLI
    keeps everything)."""
    if service is None:
        return cfg
    if service != KEY_HOLDER:
        cfg = msgspec.structs.replace(cfg, keys={}, keystore="")
    if service != NOTIFIER:
        notifier = msgspec.structs.replace(
            cfg.notifier,
            telegram=msgspec.structs.replace(cfg.notifier.telegram, token=""),
            webhook=msgspec.structs.replace(cfg.notifier.webhook, url="", secret=""),
        )
        cfg = msgspec.structs.replace(cfg, notifier=notifier)
    if service != WEB:
        cfg = msgspec.structs.replace(cfg, web=msgspec.structs.replace(cfg.web, token=""))
    return cfg


def _apply_notifier_env(cfg: AppConfig, env: dict[str, str], source: str = "") -> AppConfig:
    """TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_IDS and TELEGRAM_ALLOWED_USERS (comma separated) and
    NOTIFIER_WEBHOOK_SECRET win over the file."""
    tg, hook = cfg.notifier.telegram, cfg.notifier.webhook
    if env.get("TELEGRAM_BOT_TOKEN"):
        tg = msgspec.structs.replace(tg, token=env["TELEGRAM_BOT_TOKEN"].strip())
    if (chats := _env_ids(env, "TELEGRAM_CHAT_IDS")) is not None:
        tg = msgspec.structs.replace(tg, chat_ids=chats)
    if (users := _env_ids(env, "TELEGRAM_ALLOWED_USERS")) is not None:
        tg = msgspec.structs.replace(tg, allowed_users=users)
    if tg.token and not tg.chat_ids:
        raise ConfigError(
            f"{source}: notifier.telegram.chat_ids: empty while a bot token is set (or set TELEGRAM_CHAT_IDS)"
        )
    if env.get("NOTIFIER_WEBHOOK_SECRET"):
        hook = msgspec.structs.replace(hook, secret=env["NOTIFIER_WEBHOOK_SECRET"])
    notifier = msgspec.structs.replace(cfg.notifier, telegram=tg, webhook=hook)
    return msgspec.structs.replace(cfg, notifier=notifier)


def _apply_keystore(cfg: AppConfig, cfg_path: Path, env: dict[str, str], *, web: bool) -> AppConfig:
    """Last link of the credential chain (env > TOML [keys] > keystore): venues still without keys
    take them from the encrypted keystore, when its password is available (see shared/keystore.py).
    With `web` (no AUTOMATA_WEB_TOKEN, no token file) its WEB_ENTRY wins over `[web] token`."""
    from shared import keystore

    try:
        pairs = keystore.load_for_config(cfg.keystore, cfg_path, env)
    except keystore.KeystoreError as exc:
        raise ConfigError(str(exc)) from None
    dashboard = pairs.pop(WEB_ENTRY, None)
    if web and dashboard is not None:
        cfg = msgspec.structs.replace(cfg, web=msgspec.structs.replace(cfg.web, token=dashboard.api_secret))
    extra = {
        venue: Credentials(api_key=pair.api_key, api_secret=pair.api_secret)
        for venue, pair in pairs.items()
        if venue not in cfg.keys
    }
    return msgspec.structs.replace(cfg, keys={**extra, **cfg.keys}) if extra else cfg


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _apply_env(cfg: AppConfig, env: dict[str, str]) -> AppConfig:
    """Environment wins over the file: REDIS_URL, BINANCE_API_KEY/SECRET/TEST, BYBIT_API_KEY/SECRET/DEMO."""
    url = env.get("REDIS_URL") or cfg.redis.url
    try:
        url = with_credentials(url, env)  # REDIS_USER, REDIS_PASSWORD_FILE; masks the password
    except RedisCredentialsError as exc:
        raise ConfigError(f"environment: {exc}") from None
    if url != cfg.redis.url:
        cfg = msgspec.structs.replace(cfg, redis=RedisConfig(url=url))
    keys = dict(cfg.keys)
    venues = dict(cfg.venues)
    for venue, test_var in (("binance", "BINANCE_API_TEST"), ("bybit", "BYBIT_DEMO")):
        prefix = venue.upper()
        key, secret = env.get(f"{prefix}_API_KEY"), env.get(f"{prefix}_API_SECRET")
        if key and secret:
            keys[venue] = Credentials(api_key=key, api_secret=secret)
        elif key or secret:
            raise ConfigError(f"environment: {prefix}_API_KEY and {prefix}_API_SECRET must be set together")
        if test_var in env and venue in venues:
            venues[venue] = msgspec.structs.replace(venues[venue], testnet=_truthy(env[test_var]))
    # SIM_PORT moves the paper venue (`automata run` starts it there): a sim venue without a
    # base_url follows it, instead of reaching for 127.0.0.1:8800, which may be anyone's venue
    if env.get("SIM_PORT", "").isdigit() and int(env["SIM_PORT"]) > 0:
        for name, v in venues.items():
            if v.kind == "sim" and not v.base_url:
                venues[name] = msgspec.structs.replace(v, base_url=f"http://127.0.0.1:{int(env['SIM_PORT'])}")
    return msgspec.structs.replace(cfg, keys=keys, venues=venues)
