"""The Alertmanager intake: token, strict payload, one incident per group, the durable hand-off."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.incidents.alerts import KIND_ALERT_DELIVERY, alert_deliveries_redrive
from apps.incidents.models import (
    AlertDelivery,
    Incident,
    IncidentSource,
    IncidentStatus,
    Severity,
    TimelineKind,
)
from apps.incidents.services import alerts as alert_services
from apps.incidents.services.alerts import Alert, severity_of
from apps.incidents.tasks import alert_delivery_apply_task
from apps.jobs.handoff import REDRIVERS
from apps.jobs.models import RedriveCount
from tests.api_errors import api_error
from tests.deployments.factories import EnvironmentFactory, ReleaseFactory
from tests.fixtures.broker import celery_broker
from tests.fixtures.mlflow import free_port
from tests.incidents.factories import IncidentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("offline")]

TOKEN = "test-alertmanager-token"
GROUP_KEY = '{}/{severity="critical"}:{alertname="InferenceServiceDown"}'
STARTED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ENDED = STARTED + timedelta(minutes=25)


@pytest.fixture(autouse=True)
def alertmanager_token(settings):
    settings.ALERTMANAGER_WEBHOOK_TOKEN = TOKEN


@pytest.fixture
def staging(db):
    """Another environment, in another namespace: alerts from `models` must not land here."""
    return EnvironmentFactory(name="staging", slug="staging", order=20, namespace="staging")


@pytest.fixture
def fraud_live(fraud, production, staging):
    """fraud v2 live in production (namespace `models`), v1 in staging."""
    ReleaseFactory(
        deploy_request__environment=staging, deploy_request__version=fraud.versions.get(version=1)
    )
    return ReleaseFactory(
        deploy_request__environment=production,
        deploy_request__version=fraud.versions.get(version=2),
    )


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # Go writes nanoseconds


def alert(
    fingerprint: str,
    *,
    status: str = "firing",
    starts_at: datetime = STARTED,
    ends_at: datetime | None = None,
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "InferenceServiceDown", "severity": "critical", **labels},
        "annotations": {
            "summary": "Fraud scoring is down",
            "description": "No ready replicas for 5 minutes.",
        },
        "startsAt": stamp(starts_at),
        "endsAt": stamp(ends_at) if ends_at else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com/graph?g0.expr=up%3D%3D0",
        "fingerprint": fingerprint,
    }


FIRST = alert("3f1b9c2d4e5a6b70", namespace="models", inferenceservice="fraud")
SECOND = alert(
    "8c7d6e5f4a3b2c10",
    starts_at=STARTED + timedelta(minutes=2),
    namespace="models",
    deployment="fraud-predictor",
    model="fraud",
)


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    """The documented webhook payload (version 4), as Alertmanager sends it."""
    return {
        "version": "4",
        "groupKey": GROUP_KEY,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "modelport",
        "groupLabels": {"alertname": "InferenceServiceDown"},
        "commonLabels": {"alertname": "InferenceServiceDown", "severity": "critical"},
        "commonAnnotations": {"summary": "Fraud scoring is down"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": list(alerts),
    }


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"alertmanager:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def post(client: Client, body: Any, headers: dict[str, str] | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/hooks/alertmanager/",
        data,
        content_type="application/json",
        headers=bearer() if headers is None else headers,
    )


def deliver(client: Client, body: Any, capture) -> AlertDelivery:
    """POST, check the 202 and its one hand-off, and apply it as the worker would."""
    with capture() as callbacks:
        response = post(client, body)
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1
    delivery = AlertDelivery.objects.get(pk=response.json()["delivery"])
    assert alert_delivery_apply_task(delivery.pk) is True
    delivery.refresh_from_db()
    return delivery


def actions() -> list[tuple[str, dict[str, Any]]]:
    return [
        (event.action, event.data)
        for event in AuditEvent.objects.filter(object_type="incidents.incident").order_by("id")
    ]


def entries(incident: Incident, kind: str) -> list[str]:
    return list(
        incident.timeline.filter(kind=kind).order_by("at", "id").values_list("key", flat=True)
    )


# --- opening and updating -------------------------------------------------------------------------
def test_a_firing_group_opens_one_incident_matched_by_its_labels(
    client, fraud, fraud_live, production, django_capture_on_commit_callbacks
) -> None:
    delivery = deliver(client, notification(FIRST, SECOND), django_capture_on_commit_callbacks)

    incident = Incident.objects.get()
    assert (delivery.applied_at is not None, delivery.incident, delivery.error) == (
        True,
        incident,
        "",
    )
    assert incident.title == "Fraud scoring is down"
    assert incident.severity == Severity.SEV2  # severity="critical"
    assert incident.status == IncidentStatus.INVESTIGATING
    assert incident.source == IncidentSource.ALERTMANAGER
    assert incident.alert_group_key == GROUP_KEY
    assert incident.started_at == STARTED  # the earliest startsAt (nanoseconds dropped)
    assert set(incident.environments.all()) == {production}  # not staging, where v1 runs
    assert set(incident.registered_models.all()) == {fraud}
    firing = incident.timeline.filter(kind=TimelineKind.ALERT_FIRING).order_by("at")
    assert [(e.author_label, e.data["fingerprint"]) for e in firing] == [
        ("alertmanager", "3f1b9c2d4e5a6b70"),
        ("alertmanager", "8c7d6e5f4a3b2c10"),
    ]
    assert firing[0].at == STARTED
    assert firing[0].body == ("Firing: InferenceServiceDown in models/fraud. Fraud scoring is down")
    assert firing[0].data["labels"]["inferenceservice"] == "fraud"
    assert actions() == [
        (
            "incident.opened",
            {
                "severity": "sev2",
                "status": "investigating",
                "source": "alertmanager",
                "affects": ["environment production", "model fraud"],
            },
        ),
        (
            "incident.alerts_received",
            {"firing": 2, "resolved": 0, "delivery": delivery.pk, "added": []},
        ),
    ]


def test_the_same_notification_again_adds_nothing(
    client, fraud_live, django_capture_on_commit_callbacks
) -> None:
    body = notification(FIRST, SECOND)
    deliver(client, body, django_capture_on_commit_callbacks)
    events = AuditEvent.objects.count()

    again = deliver(client, body, django_capture_on_commit_callbacks)  # repeat_interval

    incident = Incident.objects.get()
    assert again.incident == incident
    assert again.applied_at is not None
    assert incident.timeline.filter(kind=TimelineKind.ALERT_FIRING).count() == 2
    assert AuditEvent.objects.count() == events


def test_the_group_firing_again_with_a_new_alert_updates_the_same_incident(
    client, fraud, fraud_live, production, staging, django_capture_on_commit_callbacks
) -> None:
    deliver(client, notification(FIRST), django_capture_on_commit_callbacks)
    incident = Incident.objects.get()
    assert set(incident.registered_models.all()) == {fraud}
    assert entries(incident, TimelineKind.ALERT_FIRING) == [
        f"alert:3f1b9c2d4e5a6b70:firing:{STARTED.isoformat()}"
    ]
    third = alert(
        "aa00bb11cc22dd33",
        starts_at=STARTED + timedelta(minutes=5),
        namespace="staging",
        inferenceservice="fraud",
    )

    later = deliver(client, notification(FIRST, SECOND, third), django_capture_on_commit_callbacks)

    assert Incident.objects.get() == incident
    assert later.incident == incident
    assert len(entries(incident, TimelineKind.ALERT_FIRING)) == 3
    assert set(incident.environments.all()) == {production, staging}
    change = incident.timeline.get(kind=TimelineKind.CHANGE)
    assert change.body == "Now affects environment staging (from the alerts' labels)."
    assert actions()[-1] == (
        "incident.alerts_received",
        {"firing": 2, "resolved": 0, "delivery": later.pk, "added": ["environment staging"]},
    )


def test_resolved_adds_a_timeline_entry_and_leaves_the_status(
    client, fraud_live, django_capture_on_commit_callbacks
) -> None:
    deliver(client, notification(FIRST, SECOND), django_capture_on_commit_callbacks)
    incident = Incident.objects.get()
    resolved = [{**item, "status": "resolved", "endsAt": stamp(ENDED)} for item in (FIRST, SECOND)]

    delivery = deliver(
        client, notification(*resolved, status="resolved"), django_capture_on_commit_callbacks
    )

    incident.refresh_from_db()
    assert delivery.incident == incident
    assert (incident.status, incident.resolved_at) == (IncidentStatus.INVESTIGATING, None)
    resolved_entries = incident.timeline.filter(kind=TimelineKind.ALERT_RESOLVED)
    assert [entry.at for entry in resolved_entries] == [ENDED, ENDED]
    assert resolved_entries[0].body.startswith("Resolved: InferenceServiceDown in models/")
    assert actions()[-1] == (
        "incident.alerts_received",
        {"firing": 0, "resolved": 2, "delivery": delivery.pk, "added": []},
    )


def test_resolved_alerts_of_no_incident_are_applied_and_change_nothing(
    client, django_capture_on_commit_callbacks
) -> None:
    body = notification({**FIRST, "status": "resolved", "endsAt": stamp(ENDED)}, status="resolved")

    delivery = deliver(client, body, django_capture_on_commit_callbacks)

    assert (delivery.applied_at is not None, delivery.incident) == (True, None)
    assert not Incident.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_closed_incident_is_left_alone_and_the_group_opens_a_new_one(
    client, django_capture_on_commit_callbacks
) -> None:
    closed = IncidentFactory(resolved=True, status=IncidentStatus.CLOSED, alert_group_key=GROUP_KEY)

    delivery = deliver(client, notification(FIRST), django_capture_on_commit_callbacks)

    assert delivery.incident != closed
    assert not closed.timeline.exists()
    assert Incident.objects.filter(alert_group_key=GROUP_KEY).count() == 2


def test_an_alert_matching_nothing_opens_an_incident_touching_nothing(
    client, django_capture_on_commit_callbacks
) -> None:
    body = notification(alert("0123456789abcdef", namespace="elsewhere", model="unknown"))
    body["commonAnnotations"] = {}

    incident = deliver(client, body, django_capture_on_commit_callbacks).incident

    assert incident is not None
    assert incident.title == "InferenceServiceDown"  # commonLabels.alertname
    assert not incident.environments.exists()
    assert not incident.registered_models.exists()


def test_a_start_ahead_of_our_clock_opens_an_incident_started_now(
    client, django_capture_on_commit_callbacks
) -> None:
    ahead = timezone.now() + timedelta(hours=1)
    incident = deliver(
        client, notification(alert("0a0b0c0d", starts_at=ahead)), django_capture_on_commit_callbacks
    ).incident

    assert incident is not None
    assert incident.started_at <= timezone.now()
    assert incident.timeline.get(kind=TimelineKind.ALERT_FIRING).at == ahead


@pytest.mark.parametrize(
    ("labels", "severity"),
    [
        ({"severity": "critical"}, Severity.SEV2),
        ({"severity": "warning"}, Severity.SEV3),
        ({"severity": "info"}, Severity.SEV4),
        ({"severity": "SEV1"}, Severity.SEV1),
        ({"severity": "page"}, Severity.SEV3),
        ({}, Severity.SEV3),
    ],
)
def test_severity_comes_from_the_severity_label(labels, severity) -> None:
    item = {**FIRST, "labels": labels}
    assert severity_of([Alert.from_payload(item)]) == severity


def test_the_most_severe_alert_sets_the_severity() -> None:
    warning = Alert.from_payload({**FIRST, "labels": {"severity": "warning"}})
    sev1 = Alert.from_payload({**SECOND, "labels": {"severity": "sev1"}})
    assert severity_of([warning, sev1]) == Severity.SEV1


# --- authentication -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("guess"), basic("guess"), {"Authorization": TOKEN}, {"Authorization": "Basic %%"}],
    ids=["none", "wrong-bearer", "wrong-basic", "no-scheme", "bad-basic"],
)
def test_a_bad_token_is_a_401_and_records_nothing(
    client, headers, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, notification(FIRST), headers)
    api_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="alertmanager"'
    assert callbacks == []
    assert not AlertDelivery.objects.exists()
    assert not Incident.objects.exists()


def test_basic_auth_with_the_token_as_password_is_accepted(client) -> None:
    response = post(client, notification(FIRST), basic(TOKEN))
    assert response.status_code == 202
    assert AlertDelivery.objects.get().group_key == GROUP_KEY


def test_without_a_token_configured_the_receiver_answers_503(client, settings) -> None:
    settings.ALERTMANAGER_WEBHOOK_TOKEN = ""
    response = post(client, notification(FIRST), bearer(""))
    assert "ALERTMANAGER_WEBHOOK_TOKEN" in api_error(response, 503, "not_configured")["detail"]
    assert not AlertDelivery.objects.exists()


def test_a_get_is_a_json_405(client) -> None:
    response = client.get("/hooks/alertmanager/", headers=bearer())
    api_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_an_oversized_body_is_a_json_413(client) -> None:
    big = b"{" + b" " * (2 * 1024 * 1024 + 10) + b"}"
    api_error(post(client, big), 413, "request_too_large")
    assert not AlertDelivery.objects.exists()


# --- malformed payloads ---------------------------------------------------------------------------
def _with(**changes: Any) -> dict[str, Any]:
    return {**notification(FIRST), **changes}


def _with_alert(**changes: Any) -> dict[str, Any]:
    return notification({**FIRST, **changes})


def _without_alert_field(name: str) -> dict[str, Any]:
    return notification({key: value for key, value in FIRST.items() if key != name})


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        (_with(version="3"), "version", 'version: Must be "4"'),
        (_with(version=4), "version", 'version: Must be "4"'),
        (_with(alerts=[]), "alerts", "alerts: Must be a non-empty list"),
        (_with(alerts={"0": FIRST}), "alerts", "alerts: Must be a non-empty list"),
        ({k: v for k, v in notification(FIRST).items() if k != "alerts"}, "alerts", "alerts:"),
        (_with(groupKey=""), "groupKey", "groupKey: Must be a non-empty string."),
        (_with(groupKey="g" * 1001), "groupKey", "groupKey: At most 1000 characters."),
        (_with(status="pending"), "status", "status: Must be"),
        (_with(commonLabels={"severity": 2}), "commonLabels", "commonLabels: Every key"),
        (_with(alerts=["firing"]), "alerts.0", "alerts.0: Must be an object."),
        (_with_alert(startsAt="yesterday"), "alerts.0.startsAt", "alerts.0.startsAt: Must be"),
        (_with_alert(startsAt="2026-03-01T10:00:00"), "alerts.0.startsAt", "RFC 3339"),
        (_with_alert(startsAt="0001-01-01T00:00:00Z"), "alerts.0.startsAt", "not the zero time"),
        (_with_alert(endsAt=17), "alerts.0.endsAt", "RFC 3339"),
        (_with_alert(status="silenced"), "alerts.0.status", "alerts.0.status: Must be"),
        (_with_alert(labels=["a"]), "alerts.0.labels", "alerts.0.labels: Must be an object"),
        (_with_alert(labels={"x": "a\ud800"}), "alerts.0.labels", "Every key and value"),
        (_with_alert(fingerprint="../../x"), "alerts.0.fingerprint", "fingerprint"),
        (_without_alert_field("fingerprint"), "alerts.0.fingerprint", "fingerprint"),
        (_without_alert_field("annotations"), "alerts.0.annotations", "annotations"),
    ],
)
def test_a_malformed_payload_is_a_400_naming_the_field_and_records_nothing(
    client, body, field, detail, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body)
    error = api_error(response, 400, "invalid")
    assert detail in error["detail"]
    assert field in error["errors"]
    assert callbacks == []
    assert not AlertDelivery.objects.exists()
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "The body is not JSON."),
        (b'{"version": NaN}', "The body is not JSON."),
        (b"[" * 100_000, "The body is not JSON."),
        (b"\xff\xfe", "The body is not JSON."),
        (b"[]", "The body must be a JSON object."),
    ],
    ids=["not-json", "nan", "deep", "not-utf8", "a-list"],
)
def test_a_body_that_is_no_json_object_is_a_400_and_records_nothing(client, body, detail) -> None:
    assert api_error(post(client, body), 400, "invalid")["detail"] == detail
    assert not AlertDelivery.objects.exists()


def test_every_wrong_field_is_named_at_once(client) -> None:
    body = _with(version="3", status="x", alerts=[{**FIRST, "startsAt": "soon"}, "x"])
    error = api_error(post(client, body), 400, "invalid")
    assert set(error["errors"]) == {"version", "status", "alerts.0.startsAt", "alerts.1"}
    assert error["detail"].endswith("(and 3 more fields)")


def test_only_the_fields_the_portal_reads_are_stored(client) -> None:
    body = {**notification(FIRST), "extra": {"anything": [1, 2, 3]}}
    post(client, body)
    stored = AlertDelivery.objects.get().payload
    assert "extra" not in stored
    assert stored["alerts"][0]["fingerprint"] == FIRST["fingerprint"]


# --- the durable hand-off -------------------------------------------------------------------------
def test_with_the_broker_away_a_notification_is_kept_and_beat_redrives_it(
    client, settings, fraud_live, django_capture_on_commit_callbacks
) -> None:
    away = f"redis://127.0.0.1:{free_port()}/0"
    with celery_broker(away), django_capture_on_commit_callbacks(execute=True):
        response = post(client, notification(FIRST, SECOND))
    assert response.status_code == 202  # kept, though handing it to a worker failed
    delivery = AlertDelivery.objects.get()
    assert delivery.applied_at is None
    assert not Incident.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        assert alert_deliveries_redrive(timezone.now()) == 0  # within the grace period
    assert callbacks == []
    later = delivery.received_at + timedelta(seconds=settings.HANDOFF_GRACE_SECONDS + 1)
    with django_capture_on_commit_callbacks() as callbacks:
        assert alert_deliveries_redrive(later) == 1
    assert len(callbacks) == 1
    assert RedriveCount.objects.get(kind=KIND_ALERT_DELIVERY).total == 1

    assert alert_delivery_apply_task(delivery.pk) is True  # what the re-driven task does
    assert Incident.objects.get().timeline.filter(kind=TimelineKind.ALERT_FIRING).count() == 2
    assert alert_deliveries_redrive(later) == 0  # applied rows are left alone


def test_the_redriver_is_registered() -> None:
    assert REDRIVERS[KIND_ALERT_DELIVERY] is alert_deliveries_redrive


def test_applying_the_same_delivery_twice_changes_nothing_the_second_time(
    client, fraud_live, django_capture_on_commit_callbacks
) -> None:
    delivery = deliver(client, notification(FIRST, SECOND), django_capture_on_commit_callbacks)
    applied_at = delivery.applied_at
    events, entries_before = AuditEvent.objects.count(), Incident.objects.get().timeline.count()

    assert alert_delivery_apply_task(delivery.pk) is False  # a redelivered or re-driven task

    delivery.refresh_from_db()
    assert delivery.applied_at == applied_at
    assert AuditEvent.objects.count() == events
    assert Incident.objects.get().timeline.count() == entries_before


def test_a_failure_while_applying_keeps_the_delivery_for_the_next_try(
    client, monkeypatch, fraud_live, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks():
        post(client, notification(FIRST))
    delivery = AlertDelivery.objects.get()

    real_match, tries = alert_services.alerts_match, []

    def fails_once(alerts):
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("database hiccup")
        return real_match(alerts)

    monkeypatch.setattr(alert_services, "alerts_match", fails_once)
    assert alert_delivery_apply_task(delivery.pk) is False
    delivery.refresh_from_db()
    assert (delivery.applied_at, delivery.error) == (None, "RuntimeError: database hiccup")
    assert not Incident.objects.exists()
    assert not AuditEvent.objects.exists()

    assert alert_delivery_apply_task(delivery.pk) is True
    delivery.refresh_from_db()
    assert (delivery.applied_at is not None, delivery.error) == (True, "")
    assert Incident.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_notifications_of_a_new_group_applied_at_once_open_one_incident(
    client, monkeypatch
) -> None:
    """The first worker is inside the group when the second starts: the second waits for it
    (the group's lock) and then updates the incident the first opened."""
    post(client, notification(FIRST))
    post(client, notification(FIRST, SECOND))
    first, second = AlertDelivery.objects.order_by("pk").values_list("pk", flat=True)
    real_match, inside = alert_services.alerts_match, threading.Event()

    def slow_match(alerts):
        inside.set()
        time.sleep(0.5)  # holds the group while the other worker tries to take it
        return real_match(alerts)

    monkeypatch.setattr(alert_services, "alerts_match", slow_match)

    def apply(pk: int) -> None:
        try:
            alert_delivery_apply_task(pk)
        finally:
            connection.close()

    worker = threading.Thread(target=apply, args=[first])
    worker.start()
    assert inside.wait(timeout=10)
    apply(second)
    worker.join(timeout=10)

    incident = Incident.objects.get()
    assert set(AlertDelivery.objects.values_list("incident", flat=True)) == {incident.pk}
    assert incident.timeline.filter(kind=TimelineKind.ALERT_FIRING).count() == 2
