"""Carrying a request out, in a worker: claim, apply, then watch the rollout.

Claim, then act: every step first moves the row with a conditional UPDATE that also bumps
`token`, and goes on only if it won; a task holding an older token (a duplicate, or one the
sweeper replaced) stops without a trace. No transaction is open while the cluster or MLflow is
called. A rollout is watched by short tasks re-scheduled with a countdown, never by a worker
sleeping; each look updates the heartbeat, and the sweeper (sweep.py) re-enqueues a request
whose heartbeat went quiet (its worker died, or the broker lost the message). Finishing, either
way, is finishing.py.

A cluster that does not answer (a transient error: unreachable, 429 or 5xx) is recorded on the
row as `cluster_unreachable_since`, kept across looks and workers and cleared by the next call
that succeeds. The rollout's deadline holds whatever the cluster does: a deploy whose cluster
still cannot be read once the deadline (and margin) passed fails, which opens its rollback. A
rollback never gives up on such errors: its apply retries with a capped backoff, past
DEPLOY_MAX_ATTEMPTS, until the cluster answers or a person aborts it (rollbacks.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Field
from django.utils import timezone

from apps.deployments import planning, policy, rollout
from apps.deployments.clusters import client_for, environment_of
from apps.deployments.kube.client import RETRIABLE_STATUS, KubeError, KubeUnreachableError
from apps.deployments.kube.status import FAILED, SUCCEEDED, with_deadline
from apps.deployments.models import DeployEvent, DeployRequest
from apps.deployments.services.finishing import deploy_request_fail, deploy_request_finish
from apps.deployments.services.transitions import (
    WORKER,
    deploy_event_add,
    deploy_events_record_kubernetes,
    deploy_request_transition,
    enqueue_check,
    enqueue_execute,
)

State = DeployRequest.State
# Read Kubernetes events on every n-th look (and always at the end); a rollout still going
# after SLOW_SECONDS also gets its pods' events, which explain most stuck rollouts.
EVENTS_EVERY = 3
SLOW_SECONDS = 20
# The longest wait between two tries of an apply, and the most attempts a row can count (a
# rollback waiting for the cluster keeps counting past DEPLOY_MAX_ATTEMPTS).
MAX_RETRY_DELAY = 60.0
ATTEMPTS_CEILING = 32767


def _interval() -> float:
    return settings.DEPLOY_CHECK_INTERVAL_MS / 1000


def _transient(exc: KubeError) -> bool:
    return isinstance(exc, KubeUnreachableError) or exc.status in RETRIABLE_STATUS


def _clock(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M:%S} UTC"


def _load(deploy_id: int) -> DeployRequest | None:
    """The request with what applying it reads (the reviewed diff is not among that)."""
    try:
        return (
            DeployRequest.objects.select_related("environment__protection", "model", "version")
            .defer("plan")
            .get(pk=deploy_id)
        )
    except DeployRequest.DoesNotExist:
        return None


# --- apply ----------------------------------------------------------------------------------------
def deploy_request_execute(deploy_id: int, token: int) -> str:
    """Claim a queued request and apply it; returns what happened, for the task's log."""
    deploy = _load(deploy_id)
    if deploy is None or deploy.token != token:
        return "stale"
    if deploy.state not in (State.QUEUED, State.APPLYING):
        return "stale"
    now = timezone.now()
    if deploy.state == State.QUEUED and deploy.kind == DeployRequest.Kind.DEPLOY:
        # Promotion order was checked when it was filed; a freeze or window may have begun since.
        held = policy.schedule_blockers(deploy.environment, now=now)
        if held and not deploy.bypassed:
            return _hold(deploy, " ".join(blocker.message for blocker in held))
    if deploy.attempts >= settings.DEPLOY_MAX_ATTEMPTS and not deploy.waiting_for_cluster:
        deploy_request_fail(
            deploy,
            token,
            f"Gave up after {deploy.attempts} attempts to apply (a worker died or the cluster "
            "kept failing each time).",
            from_states=(State.QUEUED, State.APPLYING),
        )
        return "failed"
    attempt = deploy.attempts + 1
    if not deploy_request_transition(
        deploy,
        to=State.APPLYING,
        from_states=(State.QUEUED, State.APPLYING),
        actor=WORKER,
        message=f"A worker took it (attempt {attempt}).",
        token=token,
        bump_token=True,
        fields={"attempts": min(attempt, ATTEMPTS_CEILING)},
    ):
        return "stale"
    token = deploy.token
    objects = planning.objects_of(deploy)
    try:
        client = client_for(deploy.environment)
        if deploy.removes_objects:
            for obj in reversed(objects):
                meta = obj["metadata"]
                client.delete(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
            deploy_request_finish(deploy, token, "Removed the objects.", revision="")
            return "removed"
        seen = rollout.snapshot(client, objects)
        applied = [client.apply(obj) for obj in objects]
    except KubeError as exc:
        # A rollback does not give up on a cluster that does not answer: only a person can.
        if _transient(exc) and (deploy.is_rollback or attempt < settings.DEPLOY_MAX_ATTEMPTS):
            return _retry_apply(deploy, token, attempt, exc)
        deploy_request_fail(deploy, token, f"The cluster refused the change: {exc.message}")
        return "failed"
    seen["applied_generation"] = (applied[0].get("metadata") or {}).get("generation", 0)
    seen["target"] = rollout.target_of(objects[0])
    kinds = ", ".join(f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects)
    if deploy.replicas == 0:
        deploy_request_finish(deploy, token, f"Scaled {kinds} to zero.", revision="")
        return "scaled-to-zero"
    with transaction.atomic():
        if deploy_request_transition(
            deploy,
            to=State.ROLLING_OUT,
            from_states=(State.APPLYING,),
            actor=WORKER,
            message=f"Applied {kinds} (server-side apply, field manager modelport).",
            token=token,
            fields={"observed": seen, **_reachable(deploy)},
        ):
            enqueue_check(deploy.pk, token, _interval())
            return "applied"
    return "stale"


def _hold(deploy: DeployRequest, message: str) -> str:
    """Leave a queued request waiting (window or freeze); the sweeper will look again."""
    with transaction.atomic():
        rows = DeployRequest.objects.filter(
            pk=deploy.pk, state=State.QUEUED, token=deploy.token
        ).update(heartbeat_at=timezone.now(), status_reason=f"Held: {message}")
        if rows and deploy.status_reason != f"Held: {message}":
            deploy_event_add(
                deploy.pk,
                DeployEvent.Kind.NOTE,
                f"Held: {message}",
                level=DeployEvent.Level.WARNING,
            )
    return "held"


def _reachable(deploy: DeployRequest) -> dict[str, Any]:
    """The fields that say the cluster answered again (none if it never stopped answering)."""
    if deploy.cluster_unreachable_since is None:
        return {}
    return {"cluster_unreachable_since": None, "status_reason": ""}


def _retry_apply(deploy: DeployRequest, token: int, attempt: int, exc: KubeError) -> str:
    """Try the apply again later (with the token just claimed), noting since when the cluster
    does not answer. Once the delay reaches its cap, an event is written only when the error
    changes: a rollback may wait for hours."""
    now = timezone.now()
    since = deploy.cluster_unreachable_since or now
    delay = min(MAX_RETRY_DELAY, max(_interval(), 1.0) * 2 ** min(attempt, 16))
    reason = f"Cannot apply: {exc.message} (unreachable since {_clock(since)})"
    note = f"Cluster error ({exc.message}); trying again in {delay:.0f} s"
    note += f" (unreachable since {_clock(since)})."
    last = attempt == settings.DEPLOY_MAX_ATTEMPTS
    if deploy.is_rollback and last:
        note += " A rollback keeps trying until the cluster answers; abort it to stop."
    with transaction.atomic():
        rows = DeployRequest.objects.filter(pk=deploy.pk, state=State.APPLYING, token=token)
        if rows.update(heartbeat_at=now, cluster_unreachable_since=since, status_reason=reason):
            if reason != deploy.status_reason or delay < MAX_RETRY_DELAY or last:
                deploy_event_add(
                    deploy.pk, DeployEvent.Kind.NOTE, note, level=DeployEvent.Level.WARNING
                )
            enqueue_execute(deploy.pk, token, countdown=delay)
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
    "cluster_unreachable_since",
    "rolling_out_at",
    "canary_traffic_percent",
    "replicas",
    "removes_objects",
    "approval",
)


def _column(name: str) -> str:
    """The column of one of DeployRequest's stored fields (`<name>_id` for a foreign key)."""
    field = DeployRequest._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise LookupError(f"DeployRequest.{name} is not stored in a column")
    return field.column


# Built from model metadata only (no outside input); values go in as query parameters.
_CLAIM_FOR_LOOK = (  # noqa: S608
    "UPDATE {table} SET {token} = {token} + 1, {heartbeat} = %s "
    "WHERE {pk} = %s AND {state} = %s AND {token} = %s RETURNING {fields}"
).format(
    table=DeployRequest._meta.db_table,
    token=_column("token"),
    heartbeat=_column("heartbeat_at"),
    pk=DeployRequest._meta.pk.column,
    state=_column("state"),
    fields=", ".join(_column(name) for name in _LOOK_FIELDS),
)


def _claim_for_look(deploy_id: int, token: int, now: datetime) -> DeployRequest | None:
    """Claim a rolling-out request holding `token` (bumping it); None if someone else did."""
    claimed = list(
        DeployRequest.objects.raw(_CLAIM_FOR_LOOK, [now, deploy_id, State.ROLLING_OUT, token])
    )
    if not claimed:
        return None
    deploy = claimed[0]
    deploy.environment = environment_of(deploy.environment_id)
    return deploy


def deploy_request_check(deploy_id: int, token: int) -> str:
    """Look at a rollout once: record what changed, finish it, or look again later."""
    now = timezone.now()
    deploy = _claim_for_look(deploy_id, token, now)
    if deploy is None:
        return "stale"
    token = deploy.token
    # What to watch was noted at apply time; older rows fall back to parsing the manifest.
    target = deploy.observed.get("target")
    objects = [target] if target else planning.objects_of(deploy)
    started = deploy.rolling_out_at
    assert started is not None, "the move to rolling out stamps rolling_out_at"
    elapsed = (now - started).total_seconds()
    events = None
    if token % EVENTS_EVERY == 0:
        events = rollout.EVENTS_ALL if elapsed > SLOW_SECONDS else rollout.EVENTS_OWN
    try:
        seen = rollout.observe(
            client_for(deploy.environment),
            objects,
            deploy.observed,
            canary_percent=deploy.canary_traffic_percent,
            since=started,
            events=events,
        )
    except KubeError as exc:
        if _transient(exc):
            return _unreadable(deploy, token, exc, now)
        deploy_request_fail(deploy, token, f"Cannot read the rollout: {exc.message}")
        return "failed"
    verdict = with_deadline(seen.verdict, elapsed=elapsed, deadline=deploy.rollout_deadline_seconds)
    if verdict.phase == SUCCEEDED:
        deploy_request_finish(
            deploy, token, verdict.reason, revision=seen.revision, kube_events=seen.events
        )
        return "succeeded"
    if verdict.phase == FAILED:
        deploy_request_fail(
            deploy,
            token,
            verdict.reason,
            kube_events=seen.events,
            fields={"cluster_unreachable_since": None},
        )
        return "failed"
    return _progress(deploy, token, verdict.reason, kube_events=seen.events)


def _unreadable(deploy: DeployRequest, token: int, exc: KubeError, now: datetime) -> str:
    """The cluster did not answer a look: look again, unless a deploy's deadline has passed
    (a rollback keeps looking until the cluster answers or a person aborts it)."""
    since = deploy.cluster_unreachable_since or now
    deadline_at = deploy.rollout_deadline_at
    if deploy.kind == DeployRequest.Kind.DEPLOY and deadline_at is not None and now > deadline_at:
        message = (
            f"The deadline ({deploy.rollout_deadline_seconds} s, at {_clock(deadline_at)}) passed "
            f"with the cluster unreachable since {since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC. "
            f"Last error: {exc.message}"
        )
        deploy_request_fail(deploy, token, message, fields={"cluster_unreachable_since": since})
        return "failed"
    reason = f"Cannot read the rollout: {exc.message} (unreachable since {_clock(since)})"
    return _progress(deploy, token, reason, unreachable_since=since)


def _progress(
    deploy: DeployRequest,
    token: int,
    reason: str,
    *,
    kube_events: Sequence[dict[str, Any]] = (),
    unreachable_since: datetime | None = None,
) -> str:
    """Record what a look saw (if anything is new) and look again; `unreachable_since` is
    None when the cluster answered."""
    changed = (
        reason != deploy.status_reason or unreachable_since != deploy.cluster_unreachable_since
    )
    if not changed and not kube_events:
        # Nothing new to record: just look again (a stale token makes that look a no-op).
        enqueue_check(deploy.pk, token, _interval())
        return "progressing"
    with transaction.atomic():
        deploy_events_record_kubernetes(deploy.pk, kube_events)
        if changed:
            rows = DeployRequest.objects.filter(pk=deploy.pk, state=State.ROLLING_OUT, token=token)
            if not rows.update(
                status_reason=reason[:2000], cluster_unreachable_since=unreachable_since
            ):
                return "stale"
        if reason != deploy.status_reason:
            level = (
                DeployEvent.Level.INFO if unreachable_since is None else DeployEvent.Level.WARNING
            )
            deploy_event_add(deploy.pk, DeployEvent.Kind.PROGRESS, reason, level=level)
        enqueue_check(deploy.pk, token, _interval())
    return "progressing"
