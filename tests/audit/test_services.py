import pytest
from django.db import transaction

from apps.audit.models import AuditEvent, AuditEventImmutableError
from apps.audit.services import AuditOutsideTransactionError, record
from tests.accounts.factories import TeamFactory, UserFactory


@pytest.mark.django_db
def test_record_fills_actor_object_data_and_request_id() -> None:
    import structlog

    user = UserFactory(username="rita")
    team = TeamFactory(name="Ranking")
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        event = record(user, "team.renamed", team, before="Rank", after="Ranking")
    assert (event.actor, event.actor_label, event.action) == (user, "rita", "team.renamed")
    assert (event.object_type, event.object_id, event.object_repr) == (
        "accounts.team",
        str(team.pk),
        "Ranking",
    )
    assert event.data == {"before": "Rank", "after": "Ranking"}
    assert event.request_id == "req-1"


@pytest.mark.django_db
def test_record_accepts_a_named_system_actor() -> None:
    event = record("scheduler", "registry.synced", None, models=3)
    assert (event.actor, event.actor_label, event.object_type) == (None, "scheduler", "")


@pytest.mark.django_db(transaction=True)
def test_record_outside_a_transaction_is_refused() -> None:
    with pytest.raises(AuditOutsideTransactionError):
        record("scheduler", "x.y")
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_record_rolls_back_with_the_change_it_records() -> None:
    user = UserFactory()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        TeamFactory(name="Doomed")
        record(user, "team.created")
        raise Boom
    assert AuditEvent.objects.count() == 0

    with transaction.atomic():
        record(user, "team.created")
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_code_paths_cannot_change_or_delete_events() -> None:
    event = record("scheduler", "x.y")
    event.action = "changed"
    with pytest.raises(AuditEventImmutableError):
        event.save()
    with pytest.raises(AuditEventImmutableError):
        event.delete()
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "x.y"
