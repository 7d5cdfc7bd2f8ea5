import factory
from django.utils import timezone

from apps.catalog.models import ModelAlias, ModelCard, ModelVersion, RegisteredModel


class RegisteredModelFactory(factory.django.DjangoModelFactory[RegisteredModel]):
    class Meta:
        model = RegisteredModel

    name = factory.Sequence(lambda n: f"model-{n:04d}")
    description = "A model."
    mlflow_created_at = factory.LazyFunction(timezone.now)
    mlflow_updated_at = factory.LazyFunction(timezone.now)


class ModelVersionFactory(factory.django.DjangoModelFactory[ModelVersion]):
    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    version = factory.Sequence(lambda n: n + 1)
    run_id = factory.Sequence(lambda n: f"run{n:06d}")
    source = factory.LazyAttribute(lambda v: f"s3://models/{v.model.name}/{v.version}")
    status = "READY"
    mlflow_created_at = factory.LazyFunction(timezone.now)
    mlflow_updated_at = factory.LazyFunction(timezone.now)
    run_fetched_at = factory.LazyFunction(timezone.now)


class ModelAliasFactory(factory.django.DjangoModelFactory[ModelAlias]):
    class Meta:
        model = ModelAlias
        skip_postgeneration_save = True

    model = factory.SubFactory(RegisteredModelFactory)
    alias = "champion"
    version = 1

    @factory.post_generation
    def mirror_on_model(
        alias: ModelAlias, create: bool, extracted: object, **kwargs: object
    ) -> None:
        """Sync writes each alias twice (row and model JSON); factories must too."""
        if create:
            model = alias.model
            model.alias_versions = {**model.alias_versions, alias.alias: alias.version}
            model.save(update_fields=["alias_versions"])


class ModelCardFactory(factory.django.DjangoModelFactory[ModelCard]):
    class Meta:
        model = ModelCard

    model = factory.SubFactory(RegisteredModelFactory)
    content = "## Intended use\n\nScoring payments."
    risk = ModelCard.Risk.MEDIUM
