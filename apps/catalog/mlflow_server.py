"""Start a real MLflow tracking server on loopback, for `make run` and the test suite.

Development and test tooling only: it needs the full `mlflow` package (a dev dependency). In
production the portal talks to an MLflow server run elsewhere, through mlflow-skinny.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 120


def mlflow_server_command(*, port: int, data_dir: Path) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        # One worker: four cost ~1.8 GiB and stall keep-alive requests by ~40 ms.
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{data_dir / 'mlflow.db'}",
        "--artifacts-destination", str(data_dir / "artifacts"),
    ]  # fmt: skip


def webhook_encryption_key(data_dir: Path) -> str:
    """MLflow encrypts stored webhook secrets; without a fixed key it makes a new one at every
    start and cannot read the webhooks it stored before. Keep one beside the database."""
    keep = data_dir / "webhook_encryption_key"
    if not keep.exists():
        keep.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        keep.chmod(0o600)
    return keep.read_text().strip()


def mlflow_server_env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": webhook_encryption_key(data_dir),
        # Let MLflow deliver webhooks to the portal on loopback over plain http. Development
        # only: in production the portal's hook URL is https and public to MLflow.
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        # MLflow caches "which webhooks want this event" for 60 s by default, so a webhook
        # registered just after an event would stay unseen for a minute.
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        # The background job runner (huey consumers) is not used here and costs memory.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def start_mlflow_server(*, port: int, data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server and wait until /health answers; raise with its log if it does not."""
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603  (a fixed command line built above)
        mlflow_server_command(port=port, data_dir=data_dir),
        env=mlflow_server_env(data_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited:\n{log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"mlflow server did not answer {url} in {STARTUP_TIMEOUT_SECONDS}s")


def stop_mlflow_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (its session)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, 9)
        process.wait(timeout=10)
