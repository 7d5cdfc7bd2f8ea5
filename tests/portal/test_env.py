"""Every environment variable is parsed, and a bad one stops start-up with a clear message."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import env


def test_read_bool_accepts_the_usual_words() -> None:
    assert env.read_bool({"X": "yes"}, "X", default=False) is True
    assert env.read_bool({"X": "Off"}, "X", default=True) is False
    assert env.read_bool({}, "X", default=True) is True


def test_read_bool_rejects_other_words_naming_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG: expected one of .* got 'maybe'"):
        env.read_bool({"DEBUG": "maybe"}, "DEBUG", default=False)


def test_read_int_rejects_text_and_values_below_minimum() -> None:
    with pytest.raises(ImproperlyConfigured, match="AXES_FAILURE_LIMIT: expected a whole number"):
        env.read_int({"AXES_FAILURE_LIMIT": "five"}, "AXES_FAILURE_LIMIT", 5)
    with pytest.raises(ImproperlyConfigured, match="must be at least 1, got 0"):
        env.read_int({"AXES_FAILURE_LIMIT": "0"}, "AXES_FAILURE_LIMIT", 5, minimum=1)
    assert env.read_int({"N": " 7 "}, "N", 5) == 7


def test_read_list_splits_on_commas_and_drops_blanks() -> None:
    hosts = env.read_list({"ALLOWED_HOSTS": "a.example, b.example,,"}, "ALLOWED_HOSTS", [])
    assert hosts == ["a.example", "b.example"]


def test_read_choice_rejects_unknown_portal_env() -> None:
    with pytest.raises(ImproperlyConfigured, match="PORTAL_ENV: expected one of development"):
        env.read_choice({"PORTAL_ENV": "prod"}, "PORTAL_ENV", env.PORTAL_ENVS, "development")


def test_read_database_defaults_to_sqlite_in_wal_mode(tmp_path: Path) -> None:
    config = env.read_database({}, "DATABASE_URL", tmp_path / "portal.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "portal.sqlite3")
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


def test_read_database_parses_postgres_url_with_timeouts(tmp_path: Path) -> None:
    config = env.read_database(
        {"DATABASE_URL": "postgres://app:pw@db.internal:5433/portal"},
        "DATABASE_URL",
        tmp_path / "x",
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.internal",
        5433,
        "portal",
        "app",
    )
    assert "statement_timeout=30000" in config["OPTIONS"]["options"]
    assert config["OPTIONS"]["server_side_binding"] is True
    assert config["OPTIONS"]["prepare_threshold"] == env.PREPARE_AFTER_RUNS


def test_read_database_prepared_statements_can_be_turned_off_for_a_pooler(tmp_path: Path) -> None:
    config = env.read_database(
        {
            "DATABASE_URL": "postgres://app@pgbouncer:6432/portal",
            "DATABASE_PREPARED_STATEMENTS": "off",
        },
        "DATABASE_URL",
        tmp_path / "x",
    )
    assert "server_side_binding" not in config["OPTIONS"]
    assert "prepare_threshold" not in config["OPTIONS"]
    assert "statement_timeout=30000" in config["OPTIONS"]["options"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x@y/z", "unsupported scheme 'mysql'"),
        ("not a url", "unsupported scheme ''"),
        ("postgres://app@db:notaport/portal", "not a valid database URL"),
        ("postgres://app@db:5432/", "names no database"),
    ],
)
def test_read_database_rejects_malformed_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"^DATABASE_URL: .*{message}"):
        env.read_database({"DATABASE_URL": url}, "DATABASE_URL", tmp_path / "x")


def test_read_broker_url_defaults_to_filesystem_and_rejects_unknown_schemes() -> None:
    assert env.read_broker_url({}, "CELERY_BROKER_URL") == "filesystem://"
    assert env.read_broker_url({"B": "redis://127.0.0.1:6379/3"}, "B") == "redis://127.0.0.1:6379/3"
    with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL: unsupported broker scheme"):
        env.read_broker_url({"CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL")


def test_read_http_url_for_mlflow() -> None:
    assert env.read_http_url({"M": "http://127.0.0.1:5000/"}, "M") == "http://127.0.0.1:5000"
    assert env.read_http_url({}, "M") == ""
    with pytest.raises(ImproperlyConfigured, match="MLFLOW_TRACKING_URI: expected an http"):
        env.read_http_url({"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"}, "MLFLOW_TRACKING_URI")


def test_read_existing_file_for_kubeconfig(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\n")
    assert env.read_existing_file({"KUBECONFIG": str(config)}, "KUBECONFIG") == str(config)
    with pytest.raises(ImproperlyConfigured, match="KUBECONFIG: no such file"):
        env.read_existing_file({"KUBECONFIG": str(tmp_path / "missing")}, "KUBECONFIG")


def test_development_key_is_the_kept_one_and_reading_it_writes_nothing(tmp_path: Path) -> None:
    keep = tmp_path / "var" / "secret_key"
    fallback = env.read_secret_key({}, "SECRET_KEY", production=False, keep=keep)
    assert fallback == env.DEVELOPMENT_SECRET_KEY
    assert not keep.parent.exists()
    assert env.write_kept_secret(keep) is True
    assert env.write_kept_secret(keep) is False
    kept = env.read_secret_key({}, "SECRET_KEY", production=False, keep=keep)
    assert kept == keep.read_text() != fallback
    assert len(kept) >= 50
    assert keep.stat().st_mode & 0o777 == 0o600


def test_secret_key_is_required_and_strong_in_production(tmp_path: Path) -> None:
    keep = tmp_path / "secret_key"
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY: is required"):
        env.read_secret_key({}, "SECRET_KEY", production=True, keep=keep)
    with pytest.raises(ImproperlyConfigured, match="at least 50 characters"):
        env.read_secret_key({"SECRET_KEY": "short"}, "SECRET_KEY", production=True, keep=keep)
    assert not keep.exists()


def test_oidc_is_off_without_client_id() -> None:
    assert env.read_oidc({}) is None


def test_oidc_names_every_missing_variable() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        env.read_oidc({"OIDC_RP_CLIENT_ID": "portal"})
    message = str(error.value)
    for name in (
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
        "OIDC_OP_JWKS_ENDPOINT",
    ):
        assert name in message
