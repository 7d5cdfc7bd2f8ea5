import factory

from apps.deployments.models import Environment


class EnvironmentFactory(factory.django.DjangoModelFactory[Environment]):
    class Meta:
        model = Environment

    name = factory.Sequence(lambda n: f"env-{n}")
    slug = factory.LazyAttribute(lambda env: env.name)
    order = factory.Sequence(lambda n: 100 + n)
    namespace = "models"
    serving_kind = Environment.ServingKind.DEPLOYMENT
    runtime_image = "docker.io/seldonio/mlserver:1.6.1-mlflow"
