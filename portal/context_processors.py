from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, object]:
    """What base.html needs on every page: the navigation and how sign-in works."""
    return {
        "nav_items": NAV_ITEMS,
        "oidc_enabled": bool(settings.OIDC),
        "oidc_provider_name": settings.OIDC["OIDC_PROVIDER_NAME"] if settings.OIDC else "",
        "portal_env": settings.PORTAL_ENV,
    }


# (label, url name or None while the section is not built yet, staff only)
NAV_ITEMS = [
    ("Catalog", "catalog:model-list", False),
    ("Approvals", "approvals:request-list", False),
    ("Deployments", "deployments:matrix", False),
    ("Incidents", "incidents:incident-list", False),
    ("Audit", "audit:event-list", True),
]
