"""Carrying a request out, in a worker: claim, apply, watch, finish — and the sweeper.

Claim, then act: every step first moves the row with a conditional UPDATE that also bumps
`token`, and goes on only if it won; a task holding an older token (a duplicate, or one the
sweeper replaced) stops without a trace. No transaction is open while the cluster or MLflow is
called. A rollout is watched by short tasks re-scheduled with a countdown, never by a worker
sleeping; each look updates the heartbeat, and the sweeper re-enqueues a request whose
heartbeat went quiet (its worker died, or the broker lost the message).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.catalog.registry import RegistryError
from apps.catalog.services import model_alias_set, model_flag_set
from apps.deployments import planning, policy, rollout
from apps.deployments.clusters import client_for, environment_of
from apps.deployments.deploys import live_release, open_rollback
from apps.deployments.kube.client import RETRIABLE_STATUS, KubeError, KubeUnreachableError
from apps.deployments.kube.status import FAILED, SUCCEEDED, with_deadline
from apps.deployments.models import DeployEvent, DeployRequest, Release
from apps.deployments.transitions import add_event, enqueue_check, enqueue_execute, transition

log = structlog.get_logger(__name__)
WORKER = "deploy-worker"
State = DeployRequest.State
ALIAS_LEASE = timedelta(minutes=2)
# Read Kubernetes events on every n-th look (and always at the end); a rollout still going
# after SLOW_SECONDS also gets its pods' events, which explain most stuck rollouts.
EVENTS_EVERY = 3
SLOW_SECONDS = 20


def _interval() -> float:
    return settings.DEPLOY_CHECK_INTERVAL_MS / 1000


def _transient(exc: KubeError) -> bool:
    return isinstance(exc, KubeUnreachableError) or exc.status in RETRIABLE_STATUS


def _load(request_id: int) -> DeployRequest | None:
    """The request with what applying it reads (the reviewed diff is not among that)."""
    try:
        return (
            DeployRequest.objects.select_related("environment__protection", "model", "version")
            .defer("plan")
            .get(pk=request_id)
        )
    except DeployRequest.DoesNotExist:
        return None


# --- apply ----------------------------------------------------------------------------------------
def deploy_request_execute(request_id: int, token: int) -> str:
    """Claim a queued request and apply it; returns what happened, for the task's log."""
    request = _load(request_id)
    if request is None or request.token != token:
        return "stale"
    if request.state not in (State.QUEUED, State.APPLYING):
        return "stale"
    now = timezone.now()
    if request.state == State.QUEUED and request.kind == DeployRequest.Kind.DEPLOY:
        # Promotion order was checked when it was filed; a freeze or window may have begun since.
        held = policy.schedule_blockers(request.environment, now=now)
        if held and not request.bypassed:
            return _hold(request, " ".join(blocker.message for blocker in held))
    if request.attempts >= settings.DEPLOY_MAX_ATTEMPTS:
        fail(
            request,
            token,
            f"Gave up after {request.attempts} attempts to apply (a worker died or the cluster "
            "kept failing each time).",
            from_states=(State.QUEUED, State.APPLYING),
        )
        return "failed"
    attempt = request.attempts + 1
    if not transition(
        request,
        to=State.APPLYING,
        from_states=(State.QUEUED, State.APPLYING),
        actor=WORKER,
        message=f"A worker took it (attempt {attempt}).",
        token=token,
        bump_token=True,
        fields={"attempts": attempt},
    ):
        return "stale"
    token = request.token
    objects = planning.objects_of(request)
    try:
        client = client_for(request.environment)
        if request.removes_objects:
            for obj in reversed(objects):
                meta = obj["metadata"]
                client.delete(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
            finish_success(request, token, "Removed the objects.", revision="")
            return "removed"
        seen = rollout.snapshot(client, objects)
        applied = [client.apply(obj) for obj in objects]
    except KubeError as exc:
        if _transient(exc) and attempt < settings.DEPLOY_MAX_ATTEMPTS:
            return _retry_apply(request, token, attempt, exc)
        fail(request, token, f"The cluster refused the change: {exc.message}")
        return "failed"
    seen["applied_generation"] = (applied[0].get("metadata") or {}).get("generation", 0)
    seen["target"] = rollout.target_of(objects[0])
    kinds = ", ".join(f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects)
    if request.replicas == 0:
        finish_success(request, token, f"Scaled {kinds} to zero.", revision="")
        return "scaled-to-zero"
    with transaction.atomic():
        if transition(
            request,
            to=State.ROLLING_OUT,
            from_states=(State.APPLYING,),
            actor=WORKER,
            message=f"Applied {kinds} (server-side apply, field manager modelport).",
            token=token,
            fields={"observed": seen},
        ):
            enqueue_check(request.pk, token, _interval())
            return "applied"
    return "stale"


def _hold(request: DeployRequest, message: str) -> str:
    """Leave a queued request waiting (window or freeze); the sweeper will look again."""
    with transaction.atomic():
        rows = DeployRequest.objects.filter(
            pk=request.pk, state=State.QUEUED, token=request.token
        ).update(heartbeat_at=timezone.now(), status_reason=f"Held: {message}")
        if rows and request.status_reason != f"Held: {message}":
            add_event(
                request.pk,
                DeployEvent.Kind.NOTE,
                f"Held: {message}",
                level=DeployEvent.Level.WARNING,
            )
    return "held"


def _retry_apply(request: DeployRequest, token: int, attempt: int, exc: KubeError) -> str:
    delay = min(60.0, max(_interval(), 1.0) * 2**attempt)
    with transaction.atomic():
        rows = DeployRequest.objects.filter(pk=request.pk, state=State.APPLYING, token=token)
        if rows.update(heartbeat_at=timezone.now()):
            add_event(
                request.pk,
                DeployEvent.Kind.NOTE,
                f"Cluster error ({exc.message}); trying again in {delay:.0f} s.",
                level=DeployEvent.Level.WARNING,
            )
            enqueue_execute(request.pk, token, countdown=delay)
    return "retrying"


# --- watch ----------------------------------------------------------------------------------------
# Looks are the most frequent work: claim the row and read what a look needs in one statement
# (UPDATE … RETURNING, on PostgreSQL and SQLite alike); anything else is loaded if needed.
_LOOK_FIELDS = (
    "id",
    "token",
    "state",
    "kind",
    "environment",
    "model",
    "version",
    "requester",
    "observed",
    "status_reason",
    "rolling_out_at",
    "canary_traffic_percent",
    "replicas",
    "removes_objects",
    "approval",
)
# Built from model metadata only (no outside input); values go in as query parameters.
_CLAIM_FOR_LOOK = (  # noqa: S608
    "UPDATE {table} SET {token} = {token} + 1, {heartbeat} = %s "
    "WHERE {pk} = %s AND {state} = %s AND {token} = %s RETURNING {fields}"
).format(
    table=DeployRequest._meta.db_table,
    token=DeployRequest._meta.get_field("token").column,
    heartbeat=DeployRequest._meta.get_field("heartbeat_at").column,
    pk=DeployRequest._meta.pk.column,
    state=DeployRequest._meta.get_field("state").column,
    fields=", ".join(DeployRequest._meta.get_field(name).column for name in _LOOK_FIELDS),
)


def _claim_for_look(request_id: int, token: int, now) -> DeployRequest | None:  # type: ignore[no-untyped-def]
    """Claim a rolling-out request holding `token` (bumping it); None if someone else did."""
    claimed = list(
        DeployRequest.objects.raw(_CLAIM_FOR_LOOK, [now, request_id, State.ROLLING_OUT, token])
    )
    if not claimed:
        return None
    request = claimed[0]
    request.environment = environment_of(request.environment_id)
    return request


def deploy_request_check(request_id: int, token: int) -> str:
    """Look at a rollout once: record what changed, finish it, or look again later."""
    now = timezone.now()
    request = _claim_for_look(request_id, token, now)
    if request is None:
        return "stale"
    token = request.token
    # What to watch was noted at apply time; older rows fall back to parsing the manifest.
    target = request.observed.get("target")
    objects = [target] if target else planning.objects_of(request)
    elapsed = (now - request.rolling_out_at).total_seconds()
    events = None
    if token % EVENTS_EVERY == 0:
        events = rollout.EVENTS_ALL if elapsed > SLOW_SECONDS else rollout.EVENTS_OWN
    try:
        seen = rollout.observe(
            client_for(request.environment),
            objects,
            request.observed,
            canary_percent=request.canary_traffic_percent,
            since=request.rolling_out_at,
            events=events,
        )
    except KubeError as exc:
        if _transient(exc):
            return _progress(request, token, f"Cannot read the rollout: {exc.message}")
        fail(request, token, f"Cannot read the rollout: {exc.message}")
        return "failed"
    deadline = request.environment.progress_deadline_seconds
    deadline += settings.DEPLOY_DEADLINE_MARGIN_SECONDS
    verdict = with_deadline(seen.verdict, elapsed=elapsed, deadline=deadline)
    if verdict.phase == SUCCEEDED:
        finish_success(
            request, token, verdict.reason, revision=seen.revision, kube_events=seen.events
        )
        return "succeeded"
    if verdict.phase == FAILED:
        fail(request, token, verdict.reason, kube_events=seen.events)
        return "failed"
    return _progress(request, token, verdict.reason, kube_events=seen.events)


def _progress(
    request: DeployRequest, token: int, reason: str, *, kube_events: Sequence[dict] = ()
) -> str:
    if reason == request.status_reason and not kube_events:
        # Nothing new to record: just look again (a stale token makes that look a no-op).
        enqueue_check(request.pk, token, _interval())
        return "progressing"
    with transaction.atomic():
        _record_kube_events(request.pk, kube_events)
        if reason != request.status_reason:
            rows = DeployRequest.objects.filter(pk=request.pk, state=State.ROLLING_OUT, token=token)
            if not rows.update(status_reason=reason[:2000]):
                return "stale"
            add_event(request.pk, DeployEvent.Kind.PROGRESS, reason)
        enqueue_check(request.pk, token, _interval())
    return "progressing"


def _record_kube_events(request_id: int, events: Sequence[dict]) -> None:
    """Kubernetes events as DeployEvents; call inside the transaction that records the look."""
    rows = []
    for event in events:
        meta = event.get("metadata") or {}
        involved = event.get("involvedObject") or {}
        stamp = event.get("lastTimestamp") or event.get("eventTime") or timezone.now()
        rows.append(
            DeployEvent(
                request_id=request_id,
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


def _parse_time(text: str):  # type: ignore[no-untyped-def]
    from django.utils.dateparse import parse_datetime

    return parse_datetime(text) or timezone.now()


# --- finish ---------------------------------------------------------------------------------------
def _approvers(request: DeployRequest) -> list[str]:
    if request.approval_id is None:
        return []
    from apps.approvals.models import Review

    return sorted(
        Review.objects.filter(
            request_id=request.approval_id, dismissed_at__isnull=True, decision="approve"
        ).values_list("reviewer__username", flat=True)
    )


# What finishing writes down about the model, version and requester (the audit row, the
# Release, the flag check); a look claimed the row without them.
_FINISH_READS = {
    "model": ("name", "flags"),
    "version": ("version", "source"),
    "requester": ("username",),
}


def _load_finish_reads(request: DeployRequest) -> None:
    missing = [
        name for name in _FINISH_READS if not DeployRequest._meta.get_field(name).is_cached(request)
    ]
    if not missing:
        return
    columns = [f"{name}__{field}" for name in missing for field in _FINISH_READS[name]]
    loaded = (
        DeployRequest.objects.select_related(*missing)
        .only("id", *missing, *columns)
        .get(pk=request.pk)
    )
    for name in missing:
        setattr(request, name, getattr(loaded, name))


def finish_success(
    request: DeployRequest,
    token: int,
    reason: str,
    *,
    revision: str,
    kube_events: Sequence[dict] = (),
) -> None:
    """Mark it succeeded and record what is live now; then move the environment's alias."""
    now = timezone.now()
    release = None
    _load_finish_reads(request)
    flag = f"rollback-failed:{request.environment.slug}"
    with transaction.atomic():
        _record_kube_events(request.pk, kube_events)
        if not transition(
            request,
            to=State.SUCCEEDED,
            from_states=(State.APPLYING, State.ROLLING_OUT),
            actor=WORKER,
            message=f"Succeeded: {reason}",
            token=token,
            fields={"status_reason": reason[:2000], "cluster_revision": revision[:100]},
            audit={"version": request.version.version, "revision": revision},
        ):
            return
        live = Release.objects.select_for_update().filter(
            environment_id=request.environment_id,
            model_id=request.model_id,
            live_until__isnull=True,
        )
        live.update(live_until=now, ended_by=request)
        if not request.removes_objects and request.replicas > 0:
            release = Release.objects.create(
                environment_id=request.environment_id,
                model_id=request.model_id,
                version=request.version,
                deploy_request=request,
                storage_uri=request.version.source,
                replicas=request.replicas,
                canary_traffic_percent=request.canary_traffic_percent,
                cluster_revision=revision[:100],
                requested_by=request.requester_label,
                approved_by=_approvers(request),
                live_from=now,
                alias=policy.rules_of(request.environment).mlflow_alias,
            )
        # A good deploy or rollback clears an earlier "rollback failed" warning here. Only a
        # rollback for this same pair raises it, and none can be running now.
        if flag in request.model.flags:
            model_flag_set(model_id=request.model_id, key=flag, message=None, actor=WORKER)
    if release is not None and release.alias:
        release_alias_move(release.pk)


def fail(
    request: DeployRequest,
    token: int,
    message: str,
    *,
    from_states: tuple[str, ...] = (State.APPLYING, State.ROLLING_OUT),
    kube_events: Sequence[dict] = (),
) -> None:
    """Mark it failed; a failed deploy rolls back to the live release (or cleans up) at once."""
    with transaction.atomic():
        _record_kube_events(request.pk, kube_events)
        if not transition(
            request,
            to=State.FAILED,
            from_states=from_states,
            actor=WORKER,
            message=f"Failed: {message}",
            token=token,
            bump_token=True,
            level=DeployEvent.Level.ERROR,
            fields={"error": message[:5000], "status_reason": message[:2000]},
        ):
            return
        if request.kind == DeployRequest.Kind.DEPLOY:
            open_rollback(
                environment=request.environment,
                version=request.version,
                target=live_release(request.environment_id, request.model_id),
                rollback_of=request,
                requester=None,
                reason=f"Automatic rollback: #{request.pk} failed.",
            )
        else:
            add_event(
                request.pk,
                DeployEvent.Kind.NOTE,
                "This rollback failed: the environment needs a person to look at it.",
                level=DeployEvent.Level.ERROR,
            )
            model_flag_set(
                model_id=request.model_id,
                key=f"rollback-failed:{request.environment.slug}",
                message=f"Rollback #{request.pk} in {request.environment.name} failed: "
                f"{message[:300]}",
                actor=WORKER,
            )


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
            add_event(
                release.deploy_request_id,
                DeployEvent.Kind.NOTE,
                f"MLflow alias @{release.alias} now points at v{release.version.version}.",
            )
    except (RegistryError, ValidationError) as exc:
        with transaction.atomic():
            Release.objects.filter(pk=release_id).update(
                alias_claimed_at=None, alias_error=str(exc)
            )
            add_event(
                release.deploy_request_id,
                DeployEvent.Kind.NOTE,
                f"Could not move the MLflow alias @{release.alias}: {exc}; the sweeper retries.",
                level=DeployEvent.Level.WARNING,
            )
        return False
    return True


# --- the sweeper ----------------------------------------------------------------------------------
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
                add_event(
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
