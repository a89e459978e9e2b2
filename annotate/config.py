"""Settings from the environment, with embedded defaults.

Every setting is an environment variable of the same name. With none set,
the platform runs on SQLite and an embedded Redis under `instance/`.
"""
from __future__ import annotations

import os
import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(Exception):
    """A setting that cannot work; the message names the variable."""


# The longest deadline window and retake cooling-off: longer is a unit mistaken (ms for s).
_MONTH = 30 * 24 * 3600


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, not {value}")
    return value


def _ranking_currency(env: Mapping[str, str], name: str) -> str:
    code = (env.get(name) or "USD").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ConfigError(f"{name} must be a three-letter ISO 4217 code such as USD, not {env.get(name)!r}")
    return code


def _exchange_rates(env: Mapping[str, str], name: str) -> dict[str, str]:
    """"EUR:1.08,JPY:0.0067" -> {"EUR": "1.08", "JPY": "0.0067"}: the value of one unit of
    each currency in RANKING_CURRENCY, as exact decimal text."""
    rates: dict[str, str] = {}
    for part in (env.get(name) or "").split(","):
        if not part.strip():
            continue
        code, _, rate = part.strip().partition(":")
        code, rate = code.strip().upper(), rate.strip()
        if len(code) != 3 or not code.isalpha():
            raise ConfigError(f"{name}: {part.strip()!r} must be CODE:RATE with a three-letter ISO 4217 code")
        try:
            valid = Decimal(rate).is_finite() and Decimal(rate) > 0
        except InvalidOperation:
            valid = False
        if not valid:
            raise ConfigError(f"{name}: the rate of {code} must be a positive decimal number, not {rate!r}")
        rates[code] = rate
    return rates


def _secret_key(env: Mapping[str, str], instance: Path) -> str:
    if env.get("SECRET_KEY"):
        return env["SECRET_KEY"]
    # Generated once and kept out of the repository, beside the SQLite file.
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def check_database_url(url: str, name: str = "DATABASE_URL") -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{name} is not a database URL: {url!r}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"{name} must be sqlite:///... or postgresql+psycopg://..., not {parsed.drivername!r}")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        # psycopg 3 is the driver we install; say so rather than fail on import.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def check_redis_url(url: str, name: str = "REDIS_URL") -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{name} must start with redis://, rediss:// or unix://, not {url!r}")
    return url


def load(instance_path: str | os.PathLike, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every setting, refusing a value that cannot work."""
    env = os.environ if env is None else env
    instance = Path(instance_path)
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'annotate.db'}"
    redis_url = env.get("REDIS_URL") or None
    return {
        "SECRET_KEY": _secret_key(env, instance),
        "DATABASE_URL": check_database_url(database_url),
        # None means: start (or reuse) the embedded Redis under instance/.
        "REDIS_URL": check_redis_url(redis_url) if redis_url else None,
        "EMBEDDED_REDIS_PATH": str(instance / "redis.db"),
        "MEDIA_ROOT": env.get("MEDIA_ROOT") or str(instance / "media"),
        "EXPORT_ROOT": env.get("EXPORT_ROOT") or str(instance / "exports"),
        "UPLOAD_ROOT": env.get("UPLOAD_ROOT") or str(instance / "uploads"),
        # The built-in learner's trained models, one file per version.
        "MODEL_ROOT": env.get("MODEL_ROOT") or str(instance / "models"),
        # Seconds an ML backend gets to answer a call before it counts as down.
        "ML_BACKEND_TIMEOUT": _int(env, "ML_BACKEND_TIMEOUT", 10, minimum=1),
        # Sign-in throttling: this many failures lock an account for LOGIN_LOCK_SECONDS.
        "LOGIN_MAX_FAILURES": _int(env, "LOGIN_MAX_FAILURES", 5, minimum=1),
        "LOGIN_LOCK_SECONDS": _int(env, "LOGIN_LOCK_SECONDS", 15 * 60, minimum=1),
        # Cookies: HTTPS-only when served over TLS (set SESSION_COOKIE_SECURE=1).
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", "") in ("1", "true", "yes"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Finished exports can be downloaded this long, then their files are removed.
        "EXPORT_TTL_SECONDS": _int(env, "EXPORT_TTL_SECONDS", 7 * 24 * 3600, minimum=60),
        "MAX_CONTENT_LENGTH": _int(env, "MAX_UPLOAD_BYTES", 512 * 1024 * 1024, minimum=1024),
        "WTF_CSRF_TIME_LIMIT": None,
        # Matching compares hourly rates of projects paid in different currencies in this one,
        # at these operator-set rates; pay itself is never converted.
        "RANKING_CURRENCY": _ranking_currency(env, "RANKING_CURRENCY"),
        "RANKING_EXCHANGE_RATES": _exchange_rates(env, "RANKING_EXCHANGE_RATES"),
        # Matching puts a project whose deadline is this close (or past) before better-paid ones.
        "DEADLINE_WINDOW_SECONDS": _int(env, "DEADLINE_WINDOW_SECONDS", 24 * 3600, maximum=_MONTH),
        # A qualification test left unsubmitted (skipped, expired, released) may be taken again this much later.
        "QUALIFICATION_RETAKE_AFTER_SECONDS": _int(env, "QUALIFICATION_RETAKE_AFTER_SECONDS", 15 * 60,
                                                   maximum=_MONTH),
    }
