"""What beat re-drives for deploys (the durable hand-off): requests whose worker went quiet or
whose message was lost, and MLflow alias moves not yet made; each is counted by kind."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.catalog.registry import RegistryError
from apps.catalog.services import model_alias_set
from apps.deployments.models import DeployEvent, DeployRequest, Release
from apps.deployments.services.transitions import (
    WORKER,
    deploy_event_add,
    enqueue_check,
    enqueue_execute,
)
from apps.jobs.handoff import count_redrives

log = structlog.get_logger(__name__)
State = DeployRequest.State
ALIAS_LEASE = timedelta(minutes=2)
KIND_REQUEST = "deploy_request"
KIND_ALIAS = "alias_move"


def release_alias_move(release_id: int) -> bool:
    """Point the environment's MLflow alias at the release's version, once.

    Claimed with a lease; MLflow is called before the mirror and audit row are written in one
    transaction (no row is locked during the call), so a crash retries without a second record.
    """
    now = timezone.now()
    claimed = (
        Release.objects.filter(pk=release_id, alias_moved_at__isnull=True)
        .exclude(alias="")
        .filter(Q(alias_claimed_at__isnull=True) | Q(alias_claimed_at__lt=now - ALIAS_LEASE))
        .update(alias_claimed_at=now)
    )
    if not claimed:
        return False
    release = Release.objects.select_related("model", "version").get(pk=release_id)
    try:
        with transaction.atomic():
            model_alias_set(
                actor=WORKER,
                model=release.model,
                alias=release.alias,
                version=release.version.version,
                via=f"deploy #{release.deploy_request_id}",
            )
            Release.objects.filter(pk=release_id).update(
                alias_moved_at=timezone.now(), alias_error=""
            )
            deploy_event_add(
                release.deploy_request_id,
                DeployEvent.Kind.NOTE,
                f"MLflow alias @{release.alias} now points at v{release.version.version}.",
            )
    except (RegistryError, ValidationError) as exc:
        with transaction.atomic():
            Release.objects.filter(pk=release_id).update(
                alias_claimed_at=None, alias_error=str(exc)
            )
            deploy_event_add(
                release.deploy_request_id,
                DeployEvent.Kind.NOTE,
                f"Could not move the MLflow alias @{release.alias}: {exc}; the sweeper retries.",
                level=DeployEvent.Level.WARNING,
            )
        return False
    return True


def deploy_requests_redrive(now: datetime) -> int:
    """Hand requests whose worker went quiet (its heartbeat older than DEPLOY_HEARTBEAT_SECONDS:
    the worker died, or the broker lost or never took the message) to a new task."""
    stale = now - timedelta(seconds=settings.DEPLOY_HEARTBEAT_SECONDS)
    stuck = list(
        DeployRequest.objects.filter(state__in=DeployRequest.WORKER_STATES)
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale))
        .values_list("pk", "state", "token")[:500]
    )
    handed = 0
    for pk, state, token in stuck:
        with transaction.atomic():
            # The token bump fences any task still holding the old one.
            rows = DeployRequest.objects.filter(pk=pk, state=state, token=token)
            if not rows.update(token=F("token") + 1, heartbeat_at=now):
                continue
            handed += 1
            count_redrives(KIND_REQUEST)
            if state != State.QUEUED:
                deploy_event_add(
                    pk,
                    DeployEvent.Kind.NOTE,
                    f"No worker reported for over {settings.DEPLOY_HEARTBEAT_SECONDS} s "
                    f"while {state.replace('_', ' ')}; the sweeper handed it to another worker.",
                    level=DeployEvent.Level.WARNING,
                )
            if state == State.ROLLING_OUT:
                enqueue_check(pk, token + 1, 0)
            else:
                enqueue_execute(pk, token + 1)
    return handed


def release_aliases_redrive(now: datetime) -> int:
    """Move the MLflow aliases that live releases should hold and do not yet (MLflow was away)."""
    pending = list(
        Release.objects.filter(alias_moved_at__isnull=True, live_until__isnull=True)
        .exclude(alias="")
        .filter(Q(alias_claimed_at__isnull=True) | Q(alias_claimed_at__lt=now - ALIAS_LEASE))
        .values_list("pk", flat=True)[:100]
    )
    with transaction.atomic():
        count_redrives(KIND_ALIAS, len(pending))
    return sum(release_alias_move(release_id) for release_id in pending)


def deploy_sweep() -> dict[str, int]:
    """Both re-drives at once (what beat's `jobs.redrive` runs for deployments)."""
    now = timezone.now()
    return {
        KIND_REQUEST: deploy_requests_redrive(now),
        KIND_ALIAS: release_aliases_redrive(now),
    }
