import socket

import pytest
from django.test import Client


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_login(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_dependency_when_ready(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker(client: Client, settings) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False
    assert "Connection" in body["checks"]["broker"]["detail"]


@pytest.mark.django_db
def test_readyz_names_an_unreachable_mlflow(client: Client, settings) -> None:
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{closed_port()}"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["mlflow"]
    assert "refused" in body["checks"]["mlflow"]["detail"].lower()


def test_readyz_names_an_unreachable_database(client: Client, monkeypatch) -> None:
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise ConnectionRefusedError("connection to 127.0.0.1:5432 refused")

    # The database cannot be stopped from inside a test; the check's failure path is what is
    # exercised here, with the driver's error replaced by the one a stopped server gives.
    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["failed"]
