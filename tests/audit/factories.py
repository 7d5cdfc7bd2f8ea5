import factory
from django.utils import timezone

from apps.audit.models import AuditEvent
from tests.accounts.factories import UserFactory


class AuditEventFactory(factory.django.DjangoModelFactory[AuditEvent]):
    """An event as `audit.services.record` writes it, by a user (`system=True`: by the scheduler)
    about `obj` (optional, like record's third argument). Created in one INSERT and never saved
    again: the model refuses updates, so there are no post-generation hooks."""

    class Meta:
        model = AuditEvent
        skip_postgeneration_save = True

    class Params:
        obj = None
        system = factory.Trait(actor=None, actor_label="scheduler")

    occurred_at = factory.LazyFunction(timezone.now)
    actor = factory.SubFactory(UserFactory)
    actor_label = factory.LazyAttribute(lambda o: o.actor.get_username())
    action = "test.happened"
    object_type = factory.Maybe("obj", factory.LazyAttribute(lambda o: o.obj._meta.label_lower), "")
    object_id = factory.Maybe("obj", factory.LazyAttribute(lambda o: str(o.obj.pk)), "")
    object_repr = factory.Maybe("obj", factory.LazyAttribute(lambda o: str(o.obj)[:200]), "")
    data = factory.LazyFunction(dict)
    request_id = ""
