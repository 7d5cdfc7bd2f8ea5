"""What incidents hear from deploy requests (the deployments transition hook).

- A rollout that fails opens a draft incident for on-call (SEV3), linked to the request, with
  the version diff and the approvers in its opening entry; a rollback that fails opens a SEV2
  draft. A failure already tied to an incident joins that incident instead.
- A request an incident follows has its events copied into the timeline at each transition,
  and the rollbacks it starts (automatic or not) are followed too.

Runs inside the transition's transaction, so the draft commits with the failure: nothing is
lost between the two, whatever happens to the worker next.
"""

from __future__ import annotations

from django.db.models import Q

from apps.approvals import selectors as approval_selectors
from apps.catalog.models import ModelVersion
from apps.catalog.selectors import compare_versions
from apps.deployments.hooks import transition_listeners
from apps.deployments.models import DeployRequest
from apps.incidents.models import Incident, IncidentSource, IncidentStatus, Severity
from apps.incidents.services.incidents import Affected, incident_open
from apps.incidents.services.timeline import deploy_events_copy

Following = Incident.deploy_requests.through
# Incidents that no longer follow their requests: a failure after these opens a new draft.
FINISHED = (IncidentStatus.CLOSED, IncidentStatus.DISMISSED)


def on_deploy_transition(deploy: DeployRequest, previous: str) -> None:
    # The request itself, or the request it rolls back (read through the join, so a worker's
    # row loaded without `rollback_of` costs no extra query).
    watched = Q(deployrequest_id=deploy.pk) | Q(deployrequest__rollbacks__id=deploy.pk)
    incident_ids = sorted(
        set(
            Following.objects.filter(watched)
            .exclude(incident__status__in=FINISHED)
            .values_list("incident_id", flat=True)
        )
    )
    if incident_ids:
        # A rollback of a followed request is followed too.
        Following.objects.bulk_create(
            [Following(incident_id=pk, deployrequest_id=deploy.pk) for pk in incident_ids],
            ignore_conflicts=True,
        )
        deploy_events_copy(incident_ids, [deploy.pk])
        return
    if deploy.state == DeployRequest.State.FAILED:
        draft_open_for_failure(deploy)


def draft_open_for_failure(deploy: DeployRequest) -> Incident:
    """A draft incident for a failed rollout (or a failed rollback), for on-call to confirm."""
    rollback = deploy.is_rollback
    what = "Rollback" if rollback else "Rollout"
    where = deploy.environment.name
    title = f"{what} of {deploy.model.name} v{deploy.version.version} in {where} failed"
    approvers = approval_selectors.approvers_of(deploy.approval_id) if deploy.approval_id else []
    baseline = deploy.baseline_version()
    diff = _version_diff(deploy.version, baseline)
    note = [f"Deploy request #{deploy.pk} failed: {deploy.error or deploy.status_reason}".strip()]
    if approvers:
        note.append(f"Approved by {', '.join(approvers)}.")
    if baseline is not None:
        note.append(f"v{baseline.version} was live before.")
    return incident_open(
        actor=None,
        title=title,
        severity=Severity.SEV2 if rollback else Severity.SEV3,
        affected=Affected(
            environments=(deploy.environment,),
            registered_models=(deploy.model,),
            deploy_ids=(deploy.pk,),
        ),
        started_at=deploy.rolling_out_at or deploy.applying_at or deploy.created_at,
        status=IncidentStatus.DRAFT,
        source=IncidentSource.DEPLOY_FAILURE,
        opened_note=" ".join(note),
        data={
            "deploy_request": deploy.pk,
            "version": deploy.version.version,
            "baseline_version": baseline.version if baseline is not None else None,
            "approvers": approvers,
            "diff": diff,
        },
    )


def _version_diff(version: ModelVersion, baseline: ModelVersion | None) -> dict[str, list]:
    """Params and metrics that differ between the failed version and the one before."""
    if baseline is None:
        return {"params": [], "metrics": []}
    pair = [baseline, version]
    return {
        kind: [[row.name, *row.values] for row in compare_versions(pair, attribute) if row.differs]
        for kind, attribute in (("params", "run_params"), ("metrics", "run_metrics"))
    }


transition_listeners.append(on_deploy_transition)
