"""Thin tasks: ids in, one service call, an outcome and the time it took in the log.

Safe to run twice: every service claims its row first (see services/execution.py). The log line
says how long the task took, how much of that was waiting for the cluster and how much CPU it
used, so the portal's own cost per deploy can be measured (the benchmark reads these lines).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from celery import shared_task

log = structlog.get_logger(__name__)


def _timed(task: str, deploy_id: int | None, run: Callable[[], object]) -> object:
    from apps.deployments.clusters import cluster_wait_seconds

    waited_before = cluster_wait_seconds()
    cpu_before = time.thread_time()
    start = time.perf_counter()
    outcome = run()
    total = time.perf_counter() - start
    cluster = cluster_wait_seconds() - waited_before
    log.info(
        "deploy_task_done",
        task=task,
        deploy=deploy_id,
        outcome=outcome,
        duration_ms=round(total * 1000, 2),
        cluster_ms=round(cluster * 1000, 2),
        cpu_ms=round((time.thread_time() - cpu_before) * 1000, 2),
    )
    return outcome


@shared_task(
    name="deployments.execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def deploy_request_execute_task(deploy_id: int, token: int) -> object:
    from apps.deployments.services import deploy_request_execute

    return _timed(
        "execute", deploy_id, lambda: deploy_request_execute(deploy_id=deploy_id, token=token)
    )


@shared_task(
    name="deployments.check", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def deploy_request_check_task(deploy_id: int, token: int) -> object:
    from apps.deployments.services import deploy_request_check

    return _timed(
        "check", deploy_id, lambda: deploy_request_check(deploy_id=deploy_id, token=token)
    )


@shared_task(name="deployments.drift_check")
def deploy_drift_check_task() -> object:
    from apps.deployments.drift import drift_check

    return _timed("drift", None, drift_check)
