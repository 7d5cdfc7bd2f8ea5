"""The Celery app: configured from Django settings (CELERY_*); finds each app's tasks.py."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import setup_logging, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def make_queue_folders(sender: Celery, **kwargs: object) -> None:
    """The filesystem broker's folders, made when Celery is first configured in a process
    (before it sends or receives anything), not when the settings are read."""
    from django.conf import settings

    for folder in getattr(settings, "QUEUE_FOLDERS", ()):
        folder.mkdir(parents=True, exist_ok=True)


@setup_logging.connect
def use_django_logging(**kwargs: object) -> None:
    """Workers log through Django's LOGGING, so their lines are JSON like the web's."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task: Task[Any, Any], **kwargs: object) -> None:
    """Treat each task like a web request: keep the connection for CONN_MAX_AGE, drop a broken one.

    Celery's Django fix-up closes the connection around every task unless CELERY_DB_REUSE_MAX
    is set (settings.py sets it), and a new PostgreSQL connection costs more than most tasks.
    An eager task runs inside its caller's request or test, which owns the connection.
    """
    from django.db import close_old_connections

    if not getattr(task.request, "is_eager", False):
        close_old_connections()


@app.task(name="portal.ping", ignore_result=False)
def ping() -> str:
    """Answers "pong": proves a message went through the broker to a worker and back."""
    return "pong"
