"""Reads of environments."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.deployments.models import Environment


def environments_all() -> QuerySet[Environment]:
    """Every environment in promotion order (dev first)."""
    return Environment.objects.order_by("order", "name")


def environment_by_slug(*, slug: str) -> QuerySet[Environment]:
    return Environment.objects.filter(slug=slug)
