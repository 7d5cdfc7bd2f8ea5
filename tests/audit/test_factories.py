"""The audit factory writes what `record` writes, once: the rows stay append-only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent, AuditEventImmutableError
from apps.audit.services import record
from tests.accounts.factories import TeamFactory, UserFactory
from tests.audit.factories import AuditEventFactory

pytestmark = pytest.mark.django_db

RECORDED = ("actor", "actor_label", "action", "object_type", "object_id", "object_repr", "data")


def test_event_is_by_a_user_about_nothing_by_default() -> None:
    event = AuditEventFactory()
    stored = AuditEvent.objects.get(pk=event.pk)
    stored.full_clean()

    assert stored.actor is not None
    assert stored.actor_label == stored.actor.username
    assert (stored.object_type, stored.object_id, stored.object_repr) == ("", "", "")
    assert stored.occurred_at <= timezone.now()


def test_event_about_an_object_matches_what_record_writes() -> None:
    actor, team = UserFactory(), TeamFactory(name="Fraud")

    made = AuditEventFactory(actor=actor, action="team.created", obj=team, data={"name": "Fraud"})
    recorded = record(actor, "team.created", team, name="Fraud")

    assert [getattr(made, name) for name in RECORDED] == [
        getattr(recorded, name) for name in RECORDED
    ]
    assert (made.object_type, made.object_id) == ("accounts.team", str(team.pk))


def test_system_event_has_no_user() -> None:
    event = AuditEventFactory(system=True)

    assert (event.actor, event.actor_label) == (None, "scheduler")
    assert list(AuditEvent.objects.filter(actor__isnull=True)) == [event]


def test_events_stay_append_only() -> None:
    event = AuditEventFactory()

    with pytest.raises(AuditEventImmutableError):
        event.save()
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AuditEventImmutableError):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.happened"


def test_batch_creates_one_row_each() -> None:
    events = AuditEventFactory.create_batch(3, system=True)

    assert AuditEvent.objects.count() == 3
    assert [event.pk for event in AuditEvent.objects.all()] == sorted(
        (event.pk for event in events), reverse=True
    )
