"""The token factory stores what the service stores, and its secret works as a bearer token."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.accounts.authentication import BearerTokenAuthentication
from apps.accounts.models import TOKEN_PREFIX, ApiToken, hash_token
from apps.accounts.services import TokenInvalidError, api_token_authenticate
from tests.accounts.factories import ApiTokenFactory, UserFactory, raw_of

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> Request:
    return Request(APIRequestFactory().get("/api/", HTTP_AUTHORIZATION=f"Bearer {raw}"))


def test_token_stores_only_the_hash_of_its_raw_secret() -> None:
    token = ApiTokenFactory()
    stored = ApiToken.objects.get(pk=token.pk)
    stored.full_clean()

    assert raw_of(token).startswith(f"{TOKEN_PREFIX}{stored.prefix}_")
    assert stored.token_hash == hash_token(raw_of(token))
    assert raw_of(token) not in (stored.prefix, stored.token_hash, stored.name)
    assert not hasattr(stored, "raw")


def test_raw_secret_authenticates_through_the_bearer_scheme() -> None:
    token = ApiTokenFactory()

    found = BearerTokenAuthentication().authenticate(bearer(raw_of(token)))
    assert found is not None
    user, authenticated = found

    assert (user, authenticated) == (token.user, token)
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_token_expires_in_30_days() -> None:
    token = ApiTokenFactory()

    assert token.expires_at == token.created_at + timedelta(days=30)
    assert token.status == ApiToken.Status.ACTIVE


def test_a_token_made_without_an_expiry_still_ends_at_the_cap(settings) -> None:
    token = ApiTokenFactory(never_expires=True)  # as tokens made before the cap could be

    assert token.expires_at is None
    assert token.ends_at == token.created_at + timedelta(days=settings.API_TOKEN_MAX_DAYS)
    assert api_token_authenticate(raw=raw_of(token)) == (token.user, token)
    with time_machine.travel(token.ends_at, tick=False), pytest.raises(TokenInvalidError):
        api_token_authenticate(raw=raw_of(token))


@pytest.mark.parametrize(
    ("trait", "status", "message"),
    [
        ("expired", "expired", "Token has expired."),
        ("revoked", "revoked", "Token has been revoked."),
    ],
)
def test_expired_and_revoked_tokens_are_refused(trait: str, status: str, message: str) -> None:
    token = ApiTokenFactory(**{trait: True})

    assert token.status == status
    with pytest.raises(AuthenticationFailed, match=message):
        BearerTokenAuthentication().authenticate(bearer(raw_of(token)))


def test_expired_token_expired_yesterday() -> None:
    token = ApiTokenFactory(expired=True)

    assert token.expires_at == token.created_at + timedelta(days=30)
    assert timezone.now() - timedelta(days=2) < token.expires_at < timezone.now()


def test_each_secret_finds_its_own_token() -> None:
    first, second = ApiTokenFactory.create_batch(2, user=UserFactory())

    assert first.prefix != second.prefix
    assert first.token_hash != second.token_hash
    assert [api_token_authenticate(raw=raw_of(token))[1] for token in (first, second)] == [
        first,
        second,
    ]


def test_built_token_carries_its_secret_unsaved() -> None:
    token = ApiTokenFactory.build()

    assert token.pk is None
    assert token.token_hash == hash_token(raw_of(token))
