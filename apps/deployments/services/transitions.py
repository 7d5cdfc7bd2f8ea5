"""Moving a deploy request between states: one conditional UPDATE, one event, one audit row.

A transition names the states it may start from; if the row is no longer in one of them (another
worker, a cancel, an abort got there first) nothing happens and the caller learns so. No
read-then-write guard anywhere: the UPDATE's WHERE clause is the guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.models import User
from apps.audit.services import record
from apps.deployments.hooks import deploy_transitioned
from apps.deployments.models import DeployEvent, DeployRequest
from apps.jobs.handoff import enqueue_after_commit

# The actor named in events and audit rows for what workers do.
WORKER = "deploy-worker"
# Which timestamp each state stamps.
STAMPS: dict[str, str] = {
    DeployRequest.State.QUEUED: "queued_at",
    DeployRequest.State.APPLYING: "applying_at",
    DeployRequest.State.ROLLING_OUT: "rolling_out_at",
}


def deploy_event_add(
    deploy_id: int,
    kind: str,
    message: str,
    *,
    level: str = DeployEvent.Level.INFO,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> DeployEvent:
    return DeployEvent.objects.create(
        request_id=deploy_id,
        at=at or timezone.now(),
        kind=kind,
        level=level,
        message=message[:5000],
        data=data or {},
    )


def deploy_request_transition(
    deploy: DeployRequest,
    *,
    to: str,
    from_states: tuple[str, ...],
    actor: User | str | None,
    message: str,
    token: int | None = None,
    bump_token: bool = False,
    level: str = DeployEvent.Level.INFO,
    fields: dict[str, Any] | None = None,
    audit: dict[str, Any] | None = None,
    condition: Q | None = None,
) -> bool:
    """Move `request` to `to` if it is in `from_states` (and holds `token`, and matches
    `condition`, when given).

    Runs in the caller's transaction (or its own); returns False, changing nothing, when the
    row had already moved on. On success `request` is updated in memory too.
    """
    now = timezone.now()
    values: dict[str, Any] = {"state": to, "heartbeat_at": now, **(fields or {})}
    if to in STAMPS:
        values.setdefault(STAMPS[to], now)
    if to in DeployRequest.FINAL_STATES:
        values.setdefault("finished_at", now)
    if bump_token:
        values["token"] = F("token") + 1
    # No savepoint inside a caller's transaction: nothing here needs undoing on its own (a
    # missed transition writes nothing), and each savepoint is two more round trips.
    with transaction.atomic(savepoint=False):
        rows = DeployRequest.objects.filter(pk=deploy.pk, state__in=from_states)
        if token is not None:
            rows = rows.filter(token=token)
        if condition is not None:
            rows = rows.filter(condition)
        if rows.update(**values) != 1:
            return False
        previous = deploy.state
        for name, value in values.items():
            if name != "token":
                setattr(deploy, name, value)
        if bump_token:
            deploy.token = (
                token + 1
                if token is not None
                else DeployRequest.objects.values_list("token", flat=True).get(pk=deploy.pk)
            )
        deploy_event_add(
            deploy.pk,
            DeployEvent.Kind.STATE,
            message,
            level=level,
            data={"from": previous, "to": to},
            at=now,
        )
        record(actor, f"deploy.{to}", deploy, previous=previous, **(audit or {}))
        deploy_transitioned(deploy, previous)
    return True


def deploy_events_record_kubernetes(deploy_id: int, events: Sequence[dict[str, Any]]) -> None:
    """Kubernetes events as DeployEvents; call inside the transaction that records the look."""
    rows = []
    for event in events:
        meta = event.get("metadata") or {}
        involved = event.get("involvedObject") or {}
        stamp = event.get("lastTimestamp") or event.get("eventTime") or timezone.now()
        rows.append(
            DeployEvent(
                request_id=deploy_id,
                at=stamp if not isinstance(stamp, str) else _parse_time(stamp),
                kind=DeployEvent.Kind.KUBERNETES,
                level=(
                    DeployEvent.Level.WARNING
                    if event.get("type") == "Warning"
                    else DeployEvent.Level.INFO
                ),
                message=f"{involved.get('kind', '')}/{involved.get('name', '')}: "
                f"{event.get('reason', '')}: {event.get('message', '')}"[:5000],
                data={"reason": event.get("reason", ""), "count": event.get("count", 1)},
                key=f"k8s:{meta.get('uid') or meta.get('name')}:{event.get('count', 1)}"[:200],
            )
        )
    if rows:
        DeployEvent.objects.bulk_create(rows, ignore_conflicts=True)


def _parse_time(text: str) -> datetime:
    return parse_datetime(text) or timezone.now()


def enqueue_execute(deploy_id: int, token: int, countdown: float = 0) -> None:
    """Ask a worker to apply the request once this transaction commits (and `countdown`
    seconds later; 0 means at once). A broker that is away fails nothing: the row is queued,
    and the sweeper hands it to a worker once its heartbeat is stale (the durable hand-off)."""
    from apps.deployments.tasks import deploy_request_execute_task

    enqueue_after_commit(deploy_request_execute_task, deploy_id, token, countdown=countdown)


def enqueue_check(deploy_id: int, token: int, countdown: float) -> None:
    """Ask a worker to look at the rollout again in `countdown` seconds."""
    from apps.deployments.tasks import deploy_request_check_task

    enqueue_after_commit(deploy_request_check_task, deploy_id, token, countdown=countdown)
