"""Protected aliases: the approvals engine's first subject.

Moving an alias that an AliasPolicy protects opens an approval request; once approved, a worker
sets the alias in MLflow (and tags the version with who approved it). An unprotected alias is
moved directly by the owning team. A protected alias moved in MLflow by anyone else is flagged.
"""

from __future__ import annotations

from datetime import timedelta
from fnmatch import fnmatchcase

import structlog
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.approvals import selectors, services
from apps.approvals.models import AliasPolicy, AliasPromotion, ApprovalRequest
from apps.approvals.registry import EffectInProgressError, SubjectKind, register_subject
from apps.approvals.rules import Rules
from apps.audit.services import record
from apps.catalog import hooks
from apps.catalog import selectors as catalog_selectors
from apps.catalog.models import ModelVersion, RegisteredModel
from apps.catalog.registry import Registry, RegistryUnavailable
from apps.catalog.services import model_alias_set, model_flag_set

log = structlog.get_logger(__name__)

KIND = "alias_promotion"
CLAIM_LEASE = timedelta(minutes=5)
APPROVAL_TAG = "portal.approval.{alias}"


def flag_key(alias: str) -> str:
    return f"alias:{alias}"


def policy_for(alias: str, policies: list[AliasPolicy] | None = None) -> AliasPolicy | None:
    """The policy protecting an alias: an exact name wins over a pattern."""
    if policies is None:
        policies = list(AliasPolicy.objects.prefetch_related("reviewer_teams", "required_teams"))
    for policy in policies:
        if policy.alias_pattern == alias:
            return policy
    matching = [p for p in policies if fnmatchcase(alias, p.alias_pattern)]
    return min(matching, key=lambda p: len(p.alias_pattern), default=None) if matching else None


def rules_for(policy: AliasPolicy, model: RegisteredModel) -> Rules:
    """The rules a promotion of this model's alias is judged by, resolved now."""
    owners = [model.owner_team.slug] if policy.include_owning_team and model.owner_team else []
    return policy.to_rules(reviewer_teams=owners, required_teams=owners)


def _live_version(model: RegisteredModel, number: int) -> ModelVersion:
    version = catalog_selectors.live_version_of(model, number)
    if version is None:
        raise ValidationError(f"{model.name} has no version {number}.")
    return version


def _is_team_member(user: User, model: RegisteredModel) -> bool:
    return (
        model.owner_team_id is not None
        and Membership.objects.filter(team_id=model.owner_team_id, user=user).exists()
    )


# --- asking ---------------------------------------------------------------------------------------
def alias_promotion_request(
    *, actor: User, model: RegisteredModel, alias: str, version: int
) -> AliasPromotion:
    """Ask to point a protected alias at a version; opens the approval request."""
    policy = policy_for(alias)
    if policy is None:
        raise ValidationError(
            f"Alias “{alias}” is not protected; the owning team moves it directly."
        )
    if model.is_deleted:
        raise ValidationError("This model has been deleted in MLflow.")
    target = _live_version(model, version)
    try:
        with transaction.atomic():
            promotion = AliasPromotion.objects.create(
                model=model, alias=alias, version=target, policy=policy, requested_by=actor
            )
            record(actor, "alias.promotion_requested", model, alias=alias, version=version)
            services.approval_request_open(
                kind=KIND,
                subject=promotion,
                revision=promotion.revision,
                title=f"Move {model.name}@{alias} to v{version}",
                requester=actor,
                rules=rules_for(policy, model),
            )
    except IntegrityError:
        open_one = AliasPromotion.objects.filter(
            model=model,
            alias=alias,
            state__in=[AliasPromotion.State.PENDING, AliasPromotion.State.APPLYING],
        ).first()
        number = approval_of_promotion(open_one).pk if open_one else "?"
        raise ValidationError(
            f"A request to move @{alias} is already open (#{number}); change its version instead."
        ) from None
    return promotion


def approval_of_promotion(promotion: AliasPromotion) -> ApprovalRequest:
    return ApprovalRequest.objects.get(kind=KIND, subject_id=promotion.pk)


def alias_promotion_change_version(
    *, actor: User, promotion: AliasPromotion, version: int
) -> AliasPromotion:
    """Choose another version for an open promotion; reviews given so far are dismissed."""
    if actor.pk != promotion.requested_by_id and not actor.is_staff:
        raise PermissionDenied("Only the requester or staff can change this request.")
    target = _live_version(promotion.model, version)
    with transaction.atomic():
        promotion = AliasPromotion.objects.select_for_update().get(pk=promotion.pk)
        if promotion.state != AliasPromotion.State.PENDING:
            raise ValidationError(f"This promotion is {promotion.get_state_display().lower()}.")
        if promotion.version_id == target.pk:
            return promotion
        promotion.version = target
        promotion.save(update_fields=["version"])
        services.approval_subject_revise(
            approval=approval_of_promotion(promotion),
            revision=promotion.revision,
            title=f"Move {promotion.model.name}@{promotion.alias} to v{version}",
            actor=actor,
        )
    return promotion


def alias_move_direct(*, actor: User, model: RegisteredModel, alias: str, version: int) -> None:
    """Move an unprotected alias at once (the owning team or staff)."""
    if policy_for(alias) is not None:
        raise ValidationError(f"Alias “{alias}” is protected: ask for a promotion instead.")
    if not (actor.is_staff or _is_team_member(actor, model)):
        raise PermissionDenied("Only the owning team or staff can move this model's aliases.")
    _live_version(model, version)
    model_alias_set(actor=actor, model=model, alias=alias, version=version, via="direct")


# --- what happens on approval ---------------------------------------------------------------------
def apply_approved_promotion(approval: ApprovalRequest) -> None:
    """Set the alias in MLflow once, tag the version with its approvers, update the mirror.

    Claim, then act: a second delivery finds the promotion claimed (or applied) and stops; a
    claim older than the lease (a worker that died) may be taken over, and setting the same
    alias again in MLflow is harmless.
    """
    now = timezone.now()
    claimable = Q(state=AliasPromotion.State.PENDING) | Q(
        state=AliasPromotion.State.APPLYING, claimed_at__lt=now - CLAIM_LEASE
    )
    claimed = AliasPromotion.objects.filter(claimable, pk=approval.subject_id).update(
        state=AliasPromotion.State.APPLYING, claimed_at=now
    )
    if not claimed:
        state = AliasPromotion.objects.filter(pk=approval.subject_id).values_list(
            "state", flat=True
        )
        if state.first() == AliasPromotion.State.APPLYING:
            raise EffectInProgressError("Another worker is applying this promotion.")
        return  # applied or closed already
    promotion = AliasPromotion.objects.select_related("model", "version").get(
        pk=approval.subject_id
    )
    try:
        _apply(approval, promotion)
    except RegistryUnavailable:
        # Give the claim back so the task's retry can take it at once.
        AliasPromotion.objects.filter(pk=promotion.pk, state=AliasPromotion.State.APPLYING).update(
            state=AliasPromotion.State.PENDING, claimed_at=None
        )
        raise


def _apply(approval: ApprovalRequest, promotion: AliasPromotion) -> None:
    registry = Registry()
    approvers = selectors.approvers_of(approval.pk)
    registry.set_version_tag(
        promotion.model.name,
        promotion.version.version,
        APPROVAL_TAG.format(alias=promotion.alias),
        f"request #{approval.pk} approved by {', '.join(approvers) or 'rules'}",
    )
    holder = promotion.baseline_version()
    with transaction.atomic():
        model_alias_set(
            actor="approvals",
            model=promotion.model,
            alias=promotion.alias,
            version=promotion.version.version,
            via=f"approval #{approval.pk}",
            registry=registry,
        )
        AliasPromotion.objects.filter(pk=promotion.pk).update(
            state=AliasPromotion.State.APPLIED,
            applied_at=timezone.now(),
            previous_version=holder.version if holder else None,
        )
        model_flag_set(
            model_id=promotion.model_id,
            key=flag_key(promotion.alias),
            message=None,
            actor="approvals",
        )


def close_promotion(approval: ApprovalRequest) -> None:
    AliasPromotion.objects.filter(
        pk=approval.subject_id, state=AliasPromotion.State.PENDING
    ).update(state=AliasPromotion.State.CLOSED)


def promotion_url(approval: ApprovalRequest) -> str:
    promotion = AliasPromotion.objects.filter(pk=approval.subject_id).first()
    return reverse("catalog:model-detail", args=[promotion.model_id]) if promotion else ""


register_subject(
    SubjectKind(
        kind=KIND,
        on_approved=apply_approved_promotion,
        on_closed=close_promotion,
        url_of=promotion_url,
        transient=(RegistryUnavailable,),
        # A promotion is about a catalog model and version, which everyone signed in may read:
        # everyone may see its approval request too.
        visible_subjects=None,
    )
)


# --- alias moves seen in MLflow -------------------------------------------------------------------
def flag_unapproved_alias_moves(changes: list[hooks.AliasChange]) -> None:
    """A protected alias changed in MLflow without an approved promotion: flag it, audit it."""
    for change in changes:
        if policy_for(change.alias) is None:
            continue
        if (
            change.new_version is not None
            and AliasPromotion.objects.filter(
                model_id=change.model_id,
                alias=change.alias,
                version__version=change.new_version,
                state__in=[AliasPromotion.State.APPLYING, AliasPromotion.State.APPLIED],
            ).exists()
        ):
            continue  # the portal's own move, seen back through MLflow
        moved = "removed" if change.new_version is None else f"moved to v{change.new_version}"
        before = f" (was v{change.old_version})" if change.old_version else ""
        message = f"@{change.alias} {moved} in MLflow without approval{before}."
        record(
            "registry-sync",
            "alias.moved_without_approval",
            None,
            model=change.model_name,
            alias=change.alias,
            old_version=change.old_version,
            new_version=change.new_version,
        )
        model_flag_set(
            model_id=change.model_id,
            key=flag_key(change.alias),
            message=message,
            actor="registry-sync",
        )


hooks.alias_change_listeners.append(flag_unapproved_alias_moves)


# --- policies ---------------------------------------------------------------------------------
POLICY_TEAM_FIELDS = ("reviewer_teams", "required_teams")


def _policy_summary(policy: AliasPolicy) -> dict:
    return {
        "alias_pattern": policy.alias_pattern,
        "required_approvals": policy.required_approvals,
        "reviewer_teams": sorted(t.slug for t in policy.reviewer_teams.all()),
        "required_teams": sorted(t.slug for t in policy.required_teams.all()),
    }


@transaction.atomic
def alias_policy_save(*, actor: User, policy: AliasPolicy | None, data: dict) -> AliasPolicy:
    """Create (policy=None) or update a protection policy from validated form data."""
    created = policy is None
    policy = policy or AliasPolicy()
    for name, value in data.items():
        if name not in POLICY_TEAM_FIELDS:
            setattr(policy, name, value)
    policy.full_clean(exclude=list(POLICY_TEAM_FIELDS))
    policy.save()
    for name in POLICY_TEAM_FIELDS:
        if name in data:
            getattr(policy, name).set(data[name])
    record(
        actor,
        "alias_policy.created" if created else "alias_policy.updated",
        policy,
        **_policy_summary(policy),
    )
    return policy


@transaction.atomic
def alias_policy_delete(*, actor: User, policy: AliasPolicy) -> None:
    summary = _policy_summary(policy)
    record(actor, "alias_policy.deleted", policy, **summary)
    policy.delete()
