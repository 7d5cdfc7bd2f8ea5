from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from apps.incidents.models import (
    Incident,
    IncidentSource,
    IncidentStatus,
    Severity,
    TimelineEntry,
    TimelineKind,
)


class IncidentFactory(factory.django.DjangoModelFactory[Incident]):
    """An incident being investigated, started an hour ago and detected five minutes later;
    `resolved=True` for one resolved 30 minutes later, `draft=True` for one the portal opened.
    Pass `registered_models=[...]`, `environments=[...]` to say what it touches."""

    class Meta:
        model = Incident
        skip_postgeneration_save = True

    class Params:
        draft = factory.Trait(
            status=IncidentStatus.DRAFT,
            source=IncidentSource.DEPLOY_FAILURE,
            created_by=None,
            acknowledged_at=None,
        )
        resolved = factory.Trait(
            status=IncidentStatus.RESOLVED,
            mitigated_at=factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=20)),
            resolved_at=factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=30)),
        )

    title = factory.Sequence(lambda n: f"Predictions are slow ({n})")
    severity = Severity.SEV3
    status = IncidentStatus.INVESTIGATING
    source = IncidentSource.MANUAL
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    detected_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(minutes=5))
    acknowledged_at = factory.LazyAttribute(lambda o: o.detected_at + timedelta(minutes=2))
    created_at = factory.SelfAttribute("detected_at")
    created_by = None

    @factory.post_generation
    def registered_models(self, create, models, **kwargs):
        if create and models:
            self.registered_models.set(models)

    @factory.post_generation
    def environments(self, create, environments, **kwargs):
        if create and environments:
            self.environments.set(environments)


class TimelineEntryFactory(factory.django.DjangoModelFactory[TimelineEntry]):
    class Meta:
        model = TimelineEntry

    incident = factory.SubFactory(IncidentFactory)
    at = factory.LazyFunction(timezone.now)
    kind = TimelineKind.NOTE
    author_label = "someone"
    body = factory.Sequence(lambda n: f"Looked at the dashboards ({n}).")
