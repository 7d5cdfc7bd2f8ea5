import secrets
from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone

from apps.accounts.models import TOKEN_PREFIX, ApiToken, Membership, Team, User, hash_token

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"Person{n}")
    password = factory.django.Password(PASSWORD)


class TeamFactory(factory.django.DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


class ApiTokenFactory(factory.django.DjangoModelFactory[ApiToken]):
    """A token made as `api_token_create` makes one, valid for 30 days. Only the hash is stored;
    `raw_of(token)` is the secret, for `Authorization: Bearer <raw>`."""

    class Meta:
        model = ApiToken

    class Params:
        # Made 31 days ago, so it expired yesterday.
        expired = factory.Trait(
            created_at=factory.LazyFunction(lambda: timezone.now() - timedelta(days=31))
        )
        revoked = factory.Trait(revoked_at=factory.LazyFunction(timezone.now))
        never_expires = factory.Trait(expires_at=None)

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token-{n}")
    prefix = factory.Sequence(lambda n: f"{n:08x}")
    raw = factory.LazyAttribute(lambda o: f"{TOKEN_PREFIX}{o.prefix}_{secrets.token_urlsafe(32)}")
    token_hash = factory.LazyAttribute(lambda o: hash_token(o.raw))
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + timedelta(days=30))

    @classmethod
    def _build(cls, model_class: type[ApiToken], *args: Any, **kwargs: Any) -> ApiToken:
        raw = kwargs.pop("raw")
        return cls._with_raw(super()._build(model_class, *args, **kwargs), raw)

    @classmethod
    def _create(cls, model_class: type[ApiToken], *args: Any, **kwargs: Any) -> ApiToken:
        raw = kwargs.pop("raw")
        return cls._with_raw(super()._create(model_class, *args, **kwargs), raw)

    @staticmethod
    def _with_raw(token: ApiToken, raw: str) -> ApiToken:
        token.__dict__["raw"] = raw  # beside the model's fields: only the hash is stored
        return token


def raw_of(token: ApiToken) -> str:
    """The secret an ApiTokenFactory token was made with (the row keeps only its hash)."""
    raw: str = token.__dict__["raw"]
    return raw
