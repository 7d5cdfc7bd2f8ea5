import factory

from apps.deployments.models import Environment, ProtectionRules


class EnvironmentFactory(factory.django.DjangoModelFactory[Environment]):
    class Meta:
        model = Environment

    name = factory.Sequence(lambda n: f"env-{n}")
    slug = factory.LazyAttribute(lambda env: env.name)
    order = factory.Sequence(lambda n: 100 + n)
    namespace = "models"
    serving_kind = Environment.ServingKind.DEPLOYMENT
    runtime_image = "docker.io/seldonio/mlserver:1.6.1-mlflow"


class ProtectionRulesFactory(factory.django.DjangoModelFactory[ProtectionRules]):
    """Unprotected by default, and moving no MLflow alias (most tests run without MLflow)."""

    class Meta:
        model = ProtectionRules
        skip_postgeneration_save = True

    environment = factory.SubFactory(EnvironmentFactory)
    mlflow_alias = ""
    rollback_min_live_minutes = 0

    @factory.post_generation
    def reviewer_teams(self, create, teams, **kwargs):  # type: ignore[no-untyped-def]
        if create and teams:
            self.reviewer_teams.set(teams)
