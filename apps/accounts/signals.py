"""Sign-in events go to the audit trail: Django's auth signals are the only hook it offers."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from apps.audit.services import record


@receiver(user_logged_in, dispatch_uid="audit-login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    with transaction.atomic():
        record(user, "auth.login", user, backend=getattr(user, "backend", ""))


@receiver(user_logged_out, dispatch_uid="audit-logout")
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    with transaction.atomic():
        record(user, "auth.logout", user)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def audit_login_failed(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
    with transaction.atomic():
        record("anonymous", "auth.login_failed", None, username=credentials.get("username", ""))
