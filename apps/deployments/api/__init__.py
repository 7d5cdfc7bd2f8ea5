"""The deployments REST API: environments, deploy requests, releases and the matrix."""

from apps.deployments.api.deploys import DeployMatrixView, DeployRequestViewSet, ReleaseViewSet
from apps.deployments.api.environments import EnvironmentViewSet

__all__ = ["DeployMatrixView", "DeployRequestViewSet", "EnvironmentViewSet", "ReleaseViewSet"]
