"""The deployments app's records: environments and their rules, deploy requests, releases."""

from apps.deployments.models.deploys import DeployEvent, DeployRequest, Release
from apps.deployments.models.environment import (
    Environment,
    dns_label_validator,
    image_validator,
)
from apps.deployments.models.protection import DeployFreeze, ProtectionRules

__all__ = [
    "DeployEvent",
    "DeployFreeze",
    "DeployRequest",
    "Environment",
    "ProtectionRules",
    "Release",
    "dns_label_validator",
    "image_validator",
]
