"""FieldsOnceMixin: the same fields and output as DRF's own, without sharing bound fields."""

from __future__ import annotations

from rest_framework import serializers

from apps.accounts.models import Team
from apps.web.serializers import FieldsOnceMixin


class PlainTeamSerializer(serializers.ModelSerializer):
    caption = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["slug", "name", "description", "created_at", "caption"]

    def get_caption(self, team: Team) -> str:
        return f"{team.name} ({team.slug})"


class OnceTeamSerializer(FieldsOnceMixin, PlainTeamSerializer):
    class Meta(PlainTeamSerializer.Meta):
        pass


def test_same_fields_and_output_as_drf() -> None:
    team = Team(slug="ml", name="ML", description="Models")
    plain, once = PlainTeamSerializer(team), OnceTeamSerializer(team)
    assert list(once.fields) == list(plain.fields)
    assert [type(f) for f in once.fields.values()] == [type(f) for f in plain.fields.values()]
    assert once.data == plain.data
    assert OnceTeamSerializer(team).data == plain.data  # built from the template this time


def test_each_serializer_gets_its_own_bound_fields() -> None:
    first, second = OnceTeamSerializer(Team(slug="a")), OnceTeamSerializer(Team(slug="b"))
    assert first.fields["slug"] is not second.fields["slug"]
    assert first.fields["slug"].parent is first
    assert second.fields["slug"].parent is second
    assert first.data["slug"] == "a" and second.data["slug"] == "b"


def test_template_is_kept_per_class() -> None:
    class Narrow(OnceTeamSerializer):
        class Meta(OnceTeamSerializer.Meta):
            fields = ["slug"]

    OnceTeamSerializer(Team(slug="x")).fields  # noqa: B018 - builds the wider template first
    assert list(Narrow(Team(slug="x")).fields) == ["slug"]
    assert list(OnceTeamSerializer(Team(slug="x")).fields) == [
        "slug",
        "name",
        "description",
        "created_at",
        "caption",
    ]
