"""The incidents REST API: incidents, their timeline, what changed before them, rollbacks."""

from apps.incidents.api.incidents import IncidentViewSet

__all__ = ["IncidentViewSet"]
