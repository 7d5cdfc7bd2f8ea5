"""What beat re-drives for deploys: requests whose worker went quiet, alias moves not yet made."""

from __future__ import annotations

from datetime import timedelta

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

log = structlog.get_logger(__name__)
State = DeployRequest.State
ALIAS_LEASE = timedelta(minutes=2)


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


def deploy_sweep() -> dict[str, int]:
    """Re-enqueue requests whose worker went quiet, and retry alias moves that did not happen."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DEPLOY_HEARTBEAT_SECONDS)
    stuck = list(
        DeployRequest.objects.filter(state__in=DeployRequest.WORKER_STATES)
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale))
        .values_list("pk", "state", "token")[:500]
    )
    requeued = 0
    for pk, state, token in stuck:
        with transaction.atomic():
            rows = DeployRequest.objects.filter(pk=pk, state=state, token=token).update(
                token=F("token") + 1, heartbeat_at=now
            )
            if not rows:
                continue
            requeued += 1
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
    aliases = 0
    pending = (
        Release.objects.filter(alias_moved_at__isnull=True, live_until__isnull=True)
        .exclude(alias="")
        .filter(Q(alias_claimed_at__isnull=True) | Q(alias_claimed_at__lt=now - ALIAS_LEASE))
        .values_list("pk", flat=True)[:100]
    )
    for release_id in list(pending):
        aliases += release_alias_move(release_id)
    if requeued or aliases:
        log.warning("deploy_sweep", requeued=requeued, aliases_moved=aliases)
    return {"looked_at": len(stuck), "requeued": requeued, "aliases_moved": aliases}
