"""Settings as a fresh process sees them: what `manage.py` does with a given environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

PRODUCTION_ENV = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "k" * 20 + "-production-secret-key-for-the-deploy-check-0123456789",
    "ALLOWED_HOSTS": "portal.example.com",
}
OIDC_ENV = {
    "OIDC_RP_CLIENT_ID": "modelport",
    "OIDC_RP_CLIENT_SECRET": "s3cret",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.com/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.com/jwks",
    "OIDC_PROVIDER_NAME": "Example SSO",
}
CLEARED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "PORTAL_ENV",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser fixture for this process only
    "DJANGO_SETTINGS_MODULE",  # manage.py's own default, as a person running it gets
)


def run(
    args: list[str], extra_env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in CLEARED and not k.startswith("OIDC_")
    }
    environ.update({"VAR_DIR": str(tmp_path), **extra_env})
    return subprocess.run(
        [sys.executable, *args],
        env=environ,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_malformed_database_url_stops_manage_py_with_clear_message(tmp_path: Path) -> None:
    result = run(["manage.py", "check"], {"DATABASE_URL": "postgres://app@db:notaport/x"}, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL: not a valid database URL" in result.stderr


def test_reading_the_settings_writes_no_files_and_makes_no_folders(tmp_path: Path) -> None:
    var = tmp_path / "var"
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECRET_KEY == s.SECRET_KEY.strip() != '', s.QUEUE_FOLDERS[0])"
    )
    result = run(
        ["-c", probe], {"DJANGO_SETTINGS_MODULE": "portal.settings", "VAR_DIR": str(var)}, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"True {var / 'broker' / 'queue'}"
    assert list(tmp_path.iterdir()) == []


def test_setup_var_makes_the_folders_and_keeps_the_secrets(tmp_path: Path) -> None:
    first = run(["manage.py", "setup_var"], {}, tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50 and oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "broker" / "queue").is_dir() and (tmp_path / "static").is_dir()
    probe = (
        "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY)"
    )
    again = run(["-c", probe], {"DJANGO_SETTINGS_MODULE": "portal.settings"}, tmp_path)
    assert again.stdout.strip().splitlines()[-1] == key
    assert run(["manage.py", "setup_var"], {}, tmp_path).stdout == ""


def test_production_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "check"],
        {"PORTAL_ENV": "production", "ALLOWED_HOSTS": "portal.example.com"},
        tmp_path,
    )
    assert result.returncode != 0
    assert "SECRET_KEY: is required when PORTAL_ENV=production" in result.stderr


def test_production_check_deploy_has_no_warnings(tmp_path: Path) -> None:
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_oidc_variables_switch_on_the_oidc_backend_and_app(tmp_path: Path) -> None:
    probe = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'apps': s.INSTALLED_APPS, 'backends': s.AUTHENTICATION_BACKENDS, "
        "'client': s.OIDC_RP_CLIENT_ID, 'jwks': s.OIDC_OP_JWKS_ENDPOINT, "
        "'algo': s.OIDC_RP_SIGN_ALGO}))"
    )
    result = run(["-c", probe], {"DJANGO_SETTINGS_MODULE": "portal.settings", **OIDC_ENV}, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "mozilla_django_oidc" in seen["apps"]
    assert "apps.accounts.oidc.PortalOIDCBackend" in seen["backends"]
    assert (seen["client"], seen["jwks"], seen["algo"]) == (
        "modelport",
        "https://idp.example.com/jwks",
        "RS256",
    )


def test_oidc_login_button_and_redirect_when_configured(tmp_path: Path) -> None:
    probe = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); from django.test import Client; "
        "c = Client(); page = c.get('/accounts/login/').content.decode(); "
        "start = c.get('/oidc/authenticate/'); "
        "print('Sign in with Example SSO' in page, start.status_code, "
        "start['Location'].split('?')[0])"
    )
    result = run(
        ["-c", probe],
        {"DJANGO_SETTINGS_MODULE": "portal.settings", "ALLOWED_HOSTS": "testserver", **OIDC_ENV},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == ("True 302 https://idp.example.com/authorize")


@pytest.mark.parametrize("variable", ["DEBUG", "LOG_LEVEL", "PORTAL_ENV"])
def test_bad_values_stop_start_up_naming_the_variable(tmp_path: Path, variable: str) -> None:
    result = run(["manage.py", "check"], {variable: "sometimes"}, tmp_path)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable}: expected one of" in result.stderr


def test_openapi_schema_validates_without_warnings(tmp_path: Path) -> None:
    result = run(
        [
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "s.yaml"),
        ],
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "/api/v1/tokens/" in (tmp_path / "s.yaml").read_text()
