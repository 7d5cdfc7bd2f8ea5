"""Beat's re-drive of every hand-off whose work is not done (apps/jobs/handoff.py)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="jobs.redrive")
def handoff_redrive_task() -> dict[str, int]:
    from apps.jobs.handoff import redrive_all

    return redrive_all()
