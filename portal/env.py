"""Read configuration from environment variables, failing early with a message a person can act on.

Every setting the portal takes from the environment goes through one of these readers, so a bad
value stops `manage.py` with `ImproperlyConfigured: <VARIABLE>: <what is wrong>` instead of
surfacing later as a confusing error in some request.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from dj_database_url import DBConfig
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
PORTAL_ENVS = ("development", "production")


def _fail(name: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}: {problem}")


def read_str(environ: Mapping[str, str], name: str, default: str = "") -> str:
    return environ.get(name, default).strip()


def read_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in environ:
        return default
    word = environ[name].strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _fail(name, f"expected one of true/false/1/0/yes/no/on/off, got {environ[name]!r}")


def read_int(
    environ: Mapping[str, str], name: str, default: int, *, minimum: int | None = None
) -> int:
    if name not in environ or not environ[name].strip():
        return default
    try:
        value = int(environ[name].strip())
    except ValueError:
        raise _fail(name, f"expected a whole number, got {environ[name]!r}") from None
    if minimum is not None and value < minimum:
        raise _fail(name, f"must be at least {minimum}, got {value}")
    return value


def read_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    if name not in environ:
        return default
    return [item.strip() for item in environ[name].split(",") if item.strip()]


def read_choice(
    environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str
) -> str:
    value = read_str(environ, name, default) or default
    if value not in choices:
        raise _fail(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


# psycopg's own default: a statement is prepared on its fifth run on a connection.
PREPARE_AFTER_RUNS = 5


def read_database(environ: Mapping[str, str], name: str, sqlite_path: Path) -> DBConfig:
    """DATABASES['default'] from a URL; unset means a SQLite file in WAL mode."""
    url = read_str(environ, name)
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            # WAL lets the web server read while a worker writes; IMMEDIATE takes the write lock
            # at BEGIN so two writers queue instead of failing with "database is locked".
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not memory, so a worker process started by a test sees the same database.
            "TEST": {"NAME": str(sqlite_path.with_name(f"test_{sqlite_path.name}"))},
        }
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise _fail(
            name,
            f"unsupported scheme {scheme!r}; use postgres://user@host:5432/dbname "
            "or sqlite:////absolute/path.sqlite3",
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises several types for malformed URLs
        raise _fail(name, f"not a valid database URL ({exc})") from None
    if not config.get("NAME"):
        raise _fail(name, "the URL names no database (expected .../dbname at the end)")
    if config["ENGINE"] == "django.db.backends.postgresql":
        # Keep a stuck lock or query from holding a worker forever.
        config.setdefault("OPTIONS", {})["options"] = (
            "-c lock_timeout=5000 -c statement_timeout=30000 "
            "-c idle_in_transaction_session_timeout=60000"
        )
        if read_bool(environ, "DATABASE_PREPARED_STATEMENTS", default=True):
            # Parameters travel apart from the SQL, so a statement a connection runs again
            # (every worker step, every filing) is parsed and planned once, not on each run.
            # Turn off behind a pooler in transaction mode, which cannot keep them.
            config["OPTIONS"]["server_side_binding"] = True
            config["OPTIONS"]["prepare_threshold"] = PREPARE_AFTER_RUNS
    return config


def read_broker_url(environ: Mapping[str, str], name: str) -> str:
    url = read_str(environ, name)
    if not url:
        return "filesystem://"
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "amqp", "amqps", "filesystem", "memory"}:
        raise _fail(name, f"unsupported broker scheme {scheme!r}; use redis://host:6379/0")
    return url


def read_http_url(environ: Mapping[str, str], name: str) -> str:
    url = read_str(environ, name).rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise _fail(name, f"expected an http(s)://host[:port] URL, got {url!r}")
    return url


def read_existing_file(environ: Mapping[str, str], name: str) -> str:
    path = read_str(environ, name)
    if path and not Path(path).expanduser().is_file():
        raise _fail(name, f"no such file: {path}")
    return path


def read_secret_key(environ: Mapping[str, str], name: str, *, production: bool, keep: Path) -> str:
    """The key from the environment; in development the one `make run` keeps under var/."""
    key = read_str(environ, name)
    if key:
        if production and (len(key) < 50 or len(set(key)) < 5):
            raise _fail(name, "must be at least 50 characters with at least 5 distinct ones")
        return key
    if production:
        raise _fail(name, "is required when PORTAL_ENV=production")
    return kept_secret(keep, fallback=DEVELOPMENT_SECRET_KEY)


# Development and tests only (production refuses to start without SECRET_KEY): used when no
# key was kept under var/, so that importing the settings never has to write one.
DEVELOPMENT_SECRET_KEY = "modelport-development-only-insecure-key-0123456789-abcdefghijklmnop"  # noqa: S105


def kept_secret(keep: Path, *, fallback: str) -> str:
    """A secret `make run` generated and kept in a private file (development), else `fallback`.

    Reading settings writes nothing: `manage.py setup_var` (run by `make run`) makes the file.
    """
    try:
        return keep.read_text().strip() or fallback
    except FileNotFoundError:
        return fallback


def write_kept_secret(keep: Path) -> bool:
    """Generate a random secret into a private file unless one is kept there; True if written."""
    if keep.exists():
        return False
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_text(secrets.token_urlsafe(50))
    keep.chmod(0o600)
    return True


def read_oidc(environ: Mapping[str, str]) -> dict[str, str] | None:
    """OIDC client settings when OIDC_RP_CLIENT_ID is set; all required ones must then be there."""
    if not read_str(environ, "OIDC_RP_CLIENT_ID"):
        return None
    required = [
        "OIDC_RP_CLIENT_ID",
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
    ]
    algorithm = read_choice(environ, "OIDC_RP_SIGN_ALGO", ("RS256", "HS256"), "RS256")
    if algorithm == "RS256":
        required.append("OIDC_OP_JWKS_ENDPOINT")
    missing = [name for name in required if not read_str(environ, name)]
    if missing:
        raise _fail(
            "OIDC_RP_CLIENT_ID",
            f"is set, so these must be set too: {', '.join(missing)}",
        )
    config = {name: read_str(environ, name) for name in required}
    config["OIDC_RP_SIGN_ALGO"] = algorithm
    config["OIDC_OP_LOGOUT_ENDPOINT"] = read_str(environ, "OIDC_OP_LOGOUT_ENDPOINT")
    config["OIDC_PROVIDER_NAME"] = read_str(environ, "OIDC_PROVIDER_NAME", "single sign-on")
    return config
