"""Verbs on the catalog that people perform: ownership, model cards, asking for a sync.

Each runs in a transaction and writes one audit event. What MLflow owns (models, versions, tags,
aliases) changes only through `apps.catalog.sync`; what the portal writes back to MLflow
(the owner tag) is written there first, so a failure changes nothing here.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.audit.services import record
from apps.catalog.models import OWNER_TAG, ModelAlias, ModelCard, ModelVersion, RegisteredModel
from apps.catalog.registry import Registry
from apps.jobs.handoff import enqueue_after_commit

CARD_TEMPLATE = """## Intended use

## Out of scope

## Limitations and known failure modes

## Evaluation
"""


def model_owner_set(
    *, actor: User, model: RegisteredModel, team: Team | None, registry: Registry | None = None
) -> RegisteredModel:
    """Give a model to a team (or to nobody); MLflow's `portal.team` tag is written first."""
    if model.is_deleted:
        raise ValidationError("This model has been deleted in MLflow.")
    registry = registry or Registry()
    if team is not None:
        registry.set_model_tag(model.name, OWNER_TAG, team.slug)
    elif OWNER_TAG in model.tags:
        registry.delete_model_tag(model.name, OWNER_TAG)
    with transaction.atomic():
        model = (
            RegisteredModel.objects.select_for_update(of=("self",))
            .select_related("owner_team")
            .get(pk=model.pk)
        )
        previous = model.owner_team.slug if model.owner_team else model.owner_tag
        tags = dict(model.tags)
        if team is None:
            tags.pop(OWNER_TAG, None)
        else:
            tags[OWNER_TAG] = team.slug
        model.owner_team = team
        model.owner_tag = team.slug if team else ""
        model.tags = tags
        model.save(update_fields=["owner_team", "owner_tag", "tags"])
        record(actor, "model.owner_changed", model, team=model.owner_tag, previous=previous)
    return model


def _card_for_update(model: RegisteredModel) -> ModelCard:
    card, _ = ModelCard.objects.get_or_create(model=model, defaults={"content": CARD_TEMPLATE})
    return ModelCard.objects.select_for_update().get(pk=card.pk)


@transaction.atomic
def model_card_update(*, actor: User, model: RegisteredModel, content: str, risk: str) -> ModelCard:
    """Edit a card; editing a card in review or approved sends it back to draft."""
    card = _card_for_update(model)
    if card.content == content and card.risk == risk:
        return card
    previous_status = card.status
    card.content, card.risk, card.updated_by = content, risk, actor
    card.status, card.approved_by, card.approved_at = ModelCard.Status.DRAFT, None, None
    card.full_clean(exclude=["model"])
    card.save()
    record(
        actor,
        "model_card.updated",
        model,
        risk=risk,
        characters=len(content),
        previous_status=previous_status,
    )
    return card


@transaction.atomic
def model_card_submit(*, actor: User, model: RegisteredModel) -> ModelCard:
    """Ask for review of a draft card."""
    card = _card_for_update(model)
    if card.status != ModelCard.Status.DRAFT:
        raise ValidationError(f"Only a draft card can be submitted; this one is {card.status}.")
    if not card.content.strip() or card.content.strip() == CARD_TEMPLATE.strip():
        raise ValidationError("Write the card before submitting it for review.")
    card.status, card.submitted_by = ModelCard.Status.IN_REVIEW, actor
    card.save(update_fields=["status", "submitted_by", "updated_at"])
    record(actor, "model_card.submitted", model, risk=card.risk)
    return card


@transaction.atomic
def model_card_approve(*, actor: User, model: RegisteredModel) -> ModelCard:
    """Approve a card in review; whoever submitted or last edited it cannot approve it."""
    card = _card_for_update(model)
    if card.status != ModelCard.Status.IN_REVIEW:
        raise ValidationError(f"Only a card in review can be approved; this one is {card.status}.")
    if actor.pk in (card.submitted_by_id, card.updated_by_id):
        raise ValidationError("You wrote or submitted this card; someone else must approve it.")
    card.status, card.approved_by, card.approved_at = (
        ModelCard.Status.APPROVED,
        actor,
        timezone.now(),
    )
    card.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
    record(actor, "model_card.approved", model, risk=card.risk)
    return card


@transaction.atomic
def model_card_return(*, actor: User, model: RegisteredModel, reason: str) -> ModelCard:
    """Send a card in review back to draft with the reviewer's reason."""
    card = _card_for_update(model)
    if card.status != ModelCard.Status.IN_REVIEW:
        raise ValidationError(f"Only a card in review can be sent back; this one is {card.status}.")
    if not reason.strip():
        raise ValidationError("Say what needs to change.")
    card.status = ModelCard.Status.DRAFT
    card.save(update_fields=["status", "updated_at"])
    record(actor, "model_card.returned", model, reason=reason[:2000])
    return card


@transaction.atomic
def registry_sync_request(*, actor: User) -> None:
    """Ask a worker for a full sync now."""
    from apps.catalog.tasks import registry_sync_task

    record(actor, "registry.sync_requested", None)
    # Only a hint: beat's own full sync runs anyway if the broker drops this one.
    enqueue_after_commit(registry_sync_task, "full", actor.get_username())


def model_alias_set(
    *,
    actor: User | str,
    model: RegisteredModel,
    alias: str,
    version: int,
    via: str = "",
    registry: Registry | None = None,
) -> ModelAlias:
    """Point an alias at a version: in MLflow first, then in the mirror, with one audit event."""
    if model.is_deleted:
        raise ValidationError("This model has been deleted in MLflow.")
    if not ModelVersion.objects.filter(model=model, version=version, is_deleted=False).exists():
        raise ValidationError(f"{model.name} has no version {version}.")
    (registry or Registry()).set_alias(model.name, alias, version)
    with transaction.atomic():
        current = ModelAlias.objects.select_for_update().filter(model=model, alias=alias).first()
        previous = current.version if current else None
        if current is None:
            current = ModelAlias.objects.create(model=model, alias=alias, version=version)
        elif current.version != version:
            current.version = version
            current.save(update_fields=["version"])
        mirrored = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        mirrored.alias_versions = {**mirrored.alias_versions, alias: version}
        mirrored.save(update_fields=["alias_versions"])
        record(
            actor, "alias.moved", model, alias=alias, version=version, previous=previous, via=via
        )
    return current


@transaction.atomic
def model_flag_set(*, model_id: int, key: str, message: str | None, actor: User | str) -> None:
    """Raise (message) or clear (None) a portal warning on a model, e.g. an unapproved move."""
    model = RegisteredModel.objects.select_for_update().get(pk=model_id)
    flags = dict(model.flags)
    if message is None:
        if key not in flags:
            return
        flags.pop(key)
    elif flags.get(key) == message:
        return
    else:
        flags[key] = message
    model.flags = flags
    model.save(update_fields=["flags"])
    record(
        actor,
        "model.flag_raised" if message else "model.flag_cleared",
        model,
        key=key,
        message=message or "",
    )
