"""The catalog REST API: read models, versions and sync state; set owners and cards."""

from apps.catalog.api.catalog import ModelVersionViewSet, RegisteredModelViewSet
from apps.catalog.api.sync import SyncNowView, SyncStateView

__all__ = ["ModelVersionViewSet", "RegisteredModelViewSet", "SyncNowView", "SyncStateView"]
