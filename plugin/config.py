"""One Settings object built from the environment. Nothing else in the project reads os.environ."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)

# Variables that must be set explicitly in production; in development each is generated once and kept in
# the instance directory so that restarts keep sessions, tokens and the webhook subscription valid.
PRODUCTION_SECRETS = (
    "BACKSTRIDE_SECRET_KEY",
    "BACKSTRIDE_TOKEN_KEY",
    "STRAVA_CLIENT_ID",
    "STRAVA_CLIENT_SECRET",
    "STRAVA_VERIFY_TOKEN",
    "STRAVA_WEBHOOK_SECRET",
)

DEV_SECRETS_FILE = "dev-secrets.json"

WEBHOOK_PATH = "/webhooks/strava"
# A webhook secret is a path segment: letters, digits, "-" and "_" only, so that no encoding can change it.
WEBHOOK_SECRET_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ConfigError(Exception):
    """The configuration cannot work; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str
    instance_dir: Path
    database_url: str
    queue_url: str
    secret_key: str
    token_key: str
    public_url: str
    strava_client_id: str
    strava_client_secret: str
    strava_verify_token: str
    strava_oauth_url: str
    strava_api_url: str
    # Timeouts for host calls: (connect, read) seconds.
    host_timeout: tuple[float, float] = (5.0, 20.0)
    # Attempts for a host call that fails with 5xx or a connection error, before the job is retried later.
    host_attempts: int = 3
    # How long before expiry an access token is refreshed.
    token_refresh_margin_s: int = 600
    # "text" for people, "json" (one object per line) for log collectors.
    log_format: str = "text"
    # The first wait before a failed job runs again (it doubles with each attempt), and after a 429 whose
    # headers still show headroom.
    retry_base_s: float = 30.0
    # A random path segment: events are taken at /webhooks/strava/<secret> only ("" in development: at
    # /webhooks/strava).
    strava_webhook_secret: str = ""
    # Reverse proxies in front (nginx): their X-Forwarded-For/-Proto/-Host are trusted this many hops deep.
    proxy_hops: int = 0
    # The bearer token a monitoring system sends for GET /metrics ("": /metrics is off).
    metrics_token: str = ""

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/oauth/callback"

    @property
    def webhook_path(self) -> str:
        """Where the host's webhook deliveries are taken."""
        secret = self.strava_webhook_secret
        return f"{WEBHOOK_PATH}/{secret}" if secret else WEBHOOK_PATH

    @property
    def webhook_callback_url(self) -> str:
        return f"{self.public_url}{self.webhook_path}"

    @property
    def sources_url(self) -> str:
        """The public page of the notes' sources, which every note links to."""
        return f"{self.public_url}/science"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; generate development secrets on first start."""
    env_vars = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env_vars.get(name, "").strip()

    env = get("BACKSTRIDE_ENV") or "development"
    if env not in ("development", "production"):
        raise ConfigError(f"BACKSTRIDE_ENV must be 'development' or 'production', not {env!r}")
    production = env == "production"
    if production:
        missing = [name for name in PRODUCTION_SECRETS if not get(name)]
        if missing:
            raise ConfigError(
                f"{missing[0]} is not set; BACKSTRIDE_ENV=production needs "
                + ", ".join(missing)
                + " to be set in the environment"
            )

    instance_dir = Path(get("BACKSTRIDE_INSTANCE_DIR") or "instance").resolve()
    # The embedded database, the queue and the migration lock live here, in production too; nobody but the
    # installation's own user reads it.
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    generated: dict[str, str] = {}
    if not production:
        generated = _dev_secrets(instance_dir)

    token_key = get("BACKSTRIDE_TOKEN_KEY") or generated.get("BACKSTRIDE_TOKEN_KEY", "")
    try:
        parse_keys(token_key)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "BACKSTRIDE_TOKEN_KEY is not a valid Fernet key, or comma-separated list of them newest first "
            "(each 32 url-safe base64-encoded bytes)"
        ) from exc

    public_url = public_url_from(get("BACKSTRIDE_PUBLIC_URL"))

    log_format = (get("BACKSTRIDE_LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise ConfigError(f"BACKSTRIDE_LOG_FORMAT must be 'text' or 'json', not {log_format!r}")

    retry_base_s = _seconds(get("BACKSTRIDE_RETRY_BASE_S"), "BACKSTRIDE_RETRY_BASE_S", default=30.0)

    hops_text = get("BACKSTRIDE_PROXY_HOPS") or "0"
    if not hops_text.isdigit() or int(hops_text) > 5:
        raise ConfigError(f"BACKSTRIDE_PROXY_HOPS must be a whole number from 0 to 5, not {hops_text!r}")

    webhook_secret = get("STRAVA_WEBHOOK_SECRET")
    if not set(webhook_secret) <= WEBHOOK_SECRET_CHARS:
        raise ConfigError("STRAVA_WEBHOOK_SECRET may hold only letters, digits, '-' and '_'")

    settings = Settings(
        env=env,
        instance_dir=instance_dir,
        database_url=get("BACKSTRIDE_DATABASE_URL") or f"sqlite:///{instance_dir / 'backstride.db'}",
        queue_url=get("BACKSTRIDE_QUEUE_URL") or f"sqlite:///{instance_dir / 'queue.db'}",
        secret_key=get("BACKSTRIDE_SECRET_KEY") or generated.get("BACKSTRIDE_SECRET_KEY", ""),
        token_key=token_key,
        public_url=public_url,
        strava_client_id=get("STRAVA_CLIENT_ID"),
        strava_client_secret=get("STRAVA_CLIENT_SECRET"),
        strava_verify_token=get("STRAVA_VERIFY_TOKEN") or generated.get("STRAVA_VERIFY_TOKEN", ""),
        strava_oauth_url=(get("STRAVA_OAUTH_URL") or "https://www.strava.com/oauth").rstrip("/"),
        strava_api_url=(get("STRAVA_API_URL") or "https://www.strava.com/api/v3").rstrip("/"),
        log_format=log_format,
        retry_base_s=retry_base_s,
        strava_webhook_secret=webhook_secret,
        proxy_hops=int(hops_text),
        metrics_token=get("BACKSTRIDE_METRICS_TOKEN"),
    )
    if production:
        _refuse_unsafe_production(settings, allow_insecure=get("BACKSTRIDE_ALLOW_INSECURE") == "1")
    return settings


# A secret shorter than this can be guessed or brute-forced offline (a session cookie's signature).
MIN_SECRET_BYTES = 32


def weak_secrets(settings: Settings) -> list[str]:
    """Secrets unfit for production: short ones, and a session key that is also the token key."""
    problems = []
    for name, value in (
        ("BACKSTRIDE_SECRET_KEY", settings.secret_key),
        ("STRAVA_VERIFY_TOKEN", settings.strava_verify_token),
        ("STRAVA_WEBHOOK_SECRET", settings.strava_webhook_secret),
    ):
        if len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{name} is shorter than {MIN_SECRET_BYTES} bytes")
    if settings.secret_key in settings.token_key.split(","):
        problems.append("BACKSTRIDE_SECRET_KEY equals BACKSTRIDE_TOKEN_KEY")
    return problems


def insecure_transport(settings: Settings) -> list[str]:
    """Addresses unfit for production: a public URL without TLS (session cookies would travel in clear and
    lack Secure), a host that is not a real one (loopback, as the sandbox is, or no TLS)."""
    problems = []
    if not settings.public_url.startswith("https://"):
        problems.append("BACKSTRIDE_PUBLIC_URL is not https")
    for name, url in (
        ("STRAVA_OAUTH_URL", settings.strava_oauth_url),
        ("STRAVA_API_URL", settings.strava_api_url),
    ):
        parts = urlsplit(url)
        if parts.scheme != "https" or is_loopback(parts.hostname or ""):
            problems.append(f"{name} is not an https address of a real host ({url})")
    return problems


def _refuse_unsafe_production(settings: Settings, allow_insecure: bool) -> None:
    problems = weak_secrets(settings)
    transport = insecure_transport(settings)
    if allow_insecure and transport:
        log.warning("BACKSTRIDE_ALLOW_INSECURE=1: production runs although %s", "; ".join(transport))
    else:
        problems += transport
    if problems:
        waivable = " (BACKSTRIDE_ALLOW_INSECURE=1 waives the address checks only)" if transport else ""
        raise ConfigError("BACKSTRIDE_ENV=production refuses to start: " + "; ".join(problems) + waivable)


def is_loopback(hostname: str) -> bool:
    """Whether the host name or address is this machine's loopback (localhost, 127.0.0.0/8, ::1)."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def parse_keys(keys: str) -> list[Fernet]:
    """The Fernet keys of BACKSTRIDE_TOKEN_KEY, newest first; ValueError for an empty or malformed one."""
    parts = [part.strip() for part in keys.split(",")]
    if any(not part for part in parts):
        raise ValueError("an empty key")
    return [Fernet(part.encode()) for part in parts]


def public_url_from(text: str) -> str:
    """BACKSTRIDE_PUBLIC_URL checked, without a trailing slash (the development address when empty)."""
    public_url = (text or "http://127.0.0.1:5000").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError(f"BACKSTRIDE_PUBLIC_URL must start with http:// or https://, not {public_url!r}")
    return public_url


def _seconds(text: str, name: str, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise ConfigError(f"{name} must be between 0.1 and 3600 seconds, not {text}")
    return value


def _dev_secrets(instance_dir: Path) -> dict[str, str]:
    """Read the generated development secrets, creating the file (mode 0600) the first time."""
    path = instance_dir / DEV_SECRETS_FILE
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "BACKSTRIDE_SECRET_KEY": secrets.token_urlsafe(32),
        "BACKSTRIDE_TOKEN_KEY": Fernet.generate_key().decode(),
        "STRAVA_VERIFY_TOKEN": secrets.token_urlsafe(24),
    }
    # Write a private temporary file, then link it into place: the link fails if another process got
    # there first, so every process ends up reading one complete set of secrets.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    try:
        os.link(tmp, path)
    except FileExistsError:
        values = json.loads(path.read_text())
    finally:
        tmp.unlink()
    return values
