"""Deploy benchmark: 50 requests to 50 (environment, model) pairs, two real worker processes, the
simulated cluster (its own process) at real speed, where one rollout takes about 10 s.

Figures (var/bench/deploy.json):
- one rollout alone: request filed → succeeded;
- 50 rollouts at once: first request filed → last one succeeded, against the target of 1.5× the
  single rollout (workers never wait for a rollout: they look, re-schedule and move on);
- the portal's own time per request, excluding waiting on the cluster: the API call that files
  it plus every task that handled it (from the workers' `deploy_task_done` lines), minus the
  time each spent waiting for the API server; median against the 100 ms target;
- tasks per request and the split of that time.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.deployments.clusters import cluster_wait_seconds
from apps.deployments.kube.client import Connection, KubeClient, KubeError
from apps.deployments.models import DeployRequest
from portal.celery import app as celery_app
from tests.accounts.factories import MembershipFactory, TeamFactory, UserFactory
from tests.bench.conftest import summary
from tests.catalog.factories import ModelVersionFactory, RegisteredModelFactory
from tests.deployments.factories import EnvironmentFactory, ProtectionRulesFactory
from tests.fixtures.mlflow import free_port
from tests.fixtures.workers import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

ENVIRONMENTS = 5
MODELS_PER_ENVIRONMENT = 10
SINGLE_RUNS = 3
CHECK_INTERVAL_MS = int(os.environ.get("BENCH_DEPLOY_CHECK_MS", "3000"))
TARGET_RATIO = 1.5
TARGET_PORTAL_MS = 100
TASK_LINE = re.compile(r"deploy_task_done\b(?P<fields>.*)$", re.MULTILINE)
FIELD = re.compile(r"(\w+)=(\S+)")


def start_cluster(port: int, kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
    namespaces = [arg for n in range(ENVIRONMENTS) for arg in ("--namespace", f"bench-{n}")]
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simcluster",
            "--port",
            str(port),
            "--no-state",
            "--quiet",
            "--kubeconfig",
            str(kubeconfig),
            *namespaces,
        ],
        cwd=settings.BASE_DIR,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "VAR_DIR": str(settings.VAR_DIR)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if kubeconfig.exists():
            try:
                with KubeClient.connect(Connection(str(kubeconfig)), attempts=1) as client:
                    client.read_namespace(f"bench-{ENVIRONMENTS - 1}")
                return process
            except KubeError:
                pass
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.2)
    raise RuntimeError(f"simulated cluster not up:\n{log.read_text()}")


def portal_ms_by_request(workers: list[WorkerProcess]) -> dict[int, dict[str, float]]:
    """Per request: task count, task time and cluster wait, from every worker's log."""
    totals: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for worker in workers:
        for path in worker.log_dir.glob("worker-*.log"):
            for line in TASK_LINE.finditer(path.read_text(errors="replace")):
                # key=value pairs in any order: structlog sorts keys, and renaming one must
                # not quietly make every task vanish from the figures.
                fields = dict(FIELD.findall(line["fields"]))
                entry = totals[int(fields["deploy"])]
                entry["tasks"] += 1
                entry["duration_ms"] += float(fields["duration_ms"])
                entry["cluster_ms"] += float(fields["cluster_ms"])
                entry["cpu_ms"] += float(fields["cpu_ms"])
    return totals


def wait_until_done(ids: list[int], timeout: float = 180) -> None:
    """Poll for the end; durations come from the rows' own timestamps, so a slow poll costs
    no accuracy, and a fast one would take CPU from the workers on a small machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not DeployRequest.objects.filter(pk__in=ids, finished_at__isnull=True).exists():
            return
        time.sleep(0.25)
    raise AssertionError("requests did not finish in time")


def test_bench_deploy(bench_report, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    cluster = start_cluster(free_port(), kubeconfig, tmp_path / "cluster.log")
    workers: list[WorkerProcess] = []
    previous_queue = celery_app.conf.task_default_queue
    try:
        team = TeamFactory(slug="bench")
        user = MembershipFactory(team=team, user=UserFactory(username="ci-bot")).user
        environments = []
        for n in range(ENVIRONMENTS):
            environment = EnvironmentFactory(
                name=f"bench-{n}",
                order=n,
                namespace=f"bench-{n}",
                kubeconfig_path=str(kubeconfig),
                progress_deadline_seconds=120,
            )
            ProtectionRulesFactory(environment=environment)
            environments.append(environment)
        models = []
        for n in range(MODELS_PER_ENVIRONMENT + 1):
            model = RegisteredModelFactory(name=f"bench-model-{n:02d}", owner_team=team)
            ModelVersionFactory(model=model, version=1, source=f"s3://bench/{n}/1")
            models.append(model)
        solo, models = models[-1], models[:-1]

        queue = f"modelport-bench-{uuid.uuid4().hex[:8]}"
        celery_app.conf.task_default_queue = queue
        env = {"DEPLOY_CHECK_INTERVAL_MS": str(CHECK_INTERVAL_MS), "LOG_LEVEL": "INFO"}
        for index in range(2):
            worker = WorkerProcess(queue=queue, log_dir=tmp_path / f"w{index}", extra_env=env)
            worker.log_dir.mkdir()
            worker.start()
            workers.append(worker)

        create_ms: dict[int, float] = {}
        create_cpu_ms: dict[int, float] = {}

        client = Client()  # a CI pipeline filing requests through the API
        client.force_login(user)

        def submit(environment, model) -> int:
            waited = cluster_wait_seconds()
            cpu = time.thread_time()
            start = time.perf_counter()
            response = client.post(
                "/api/v1/deploy-requests/",
                {"model": model.name, "version": 1, "environment": environment.slug},
                content_type="application/json",
            )
            elapsed = time.perf_counter() - start
            cpu = time.thread_time() - cpu
            cluster = cluster_wait_seconds() - waited
            assert response.status_code == 201, response.content
            request_id = response.json()["id"]
            create_ms[request_id] = (elapsed - cluster) * 1000
            create_cpu_ms[request_id] = cpu * 1000
            return request_id

        # One rollout on its own, three times (the median: a look every few seconds makes any
        # single figure land anywhere within one check interval).
        singles = []
        for environment in environments[:SINGLE_RUNS]:
            single_id = submit(environment, solo)
            wait_until_done([single_id])
            single = DeployRequest.objects.get(pk=single_id)
            assert single.state == "succeeded", single.error
            assert single.finished_at is not None
            singles.append((single.finished_at - single.created_at).total_seconds())
        single_seconds = statistics.median(singles)
        bench_report.add("single_rollout_seconds", [round(s, 2) for s in singles])

        # Fifty at once: filed one after the other, as fast as the API answers.
        pairs = [(env_, model) for env_ in environments for model in models]
        started_at = time.time()
        ids = [submit(*pair) for pair in pairs]
        submitted = time.time() - started_at
        wait_until_done(ids)
        done = list(DeployRequest.objects.filter(pk__in=ids))
        assert [r.state for r in done] == ["succeeded"] * len(pairs), [r.error for r in done]
        finished = [(r.created_at, r.finished_at) for r in done if r.finished_at is not None]
        assert len(finished) == len(done)
        last = max(end.timestamp() for _, end in finished)
        all_seconds = last - started_at
        rollouts = [(end - start).total_seconds() for start, end in finished]
        bench_report.add("requests", len(done))
        bench_report.add("submit_all_seconds", round(submitted, 2))
        bench_report.add("all_done_seconds", round(all_seconds, 2))
        bench_report.add("each_rollout_ms", summary([s * 1000 for s in rollouts]))
        bench_report.add(
            "all_vs_single",
            {"ratio": round(all_seconds / single_seconds, 2), "target_max": TARGET_RATIO},
        )

        time.sleep(1)  # let the last log lines reach the files
        tasks = portal_ms_by_request(workers)
        missing = [request_id for request_id in ids if not tasks[request_id]["tasks"]]
        assert not missing, f"no deploy_task_done lines for requests {missing[:5]}…"
        own, own_cpu, task_counts, worker_own = [], [], [], []
        for request_id in ids:
            entry = tasks[request_id]
            task_ms = entry["duration_ms"] - entry["cluster_ms"]
            worker_own.append(task_ms)
            own.append(create_ms[request_id] + task_ms)
            own_cpu.append(create_cpu_ms[request_id] + entry["cpu_ms"])
            task_counts.append(entry["tasks"])
        bench_report.add(
            "portal_ms_per_request_excluding_cluster",
            {**summary(own), "target_median_ms": TARGET_PORTAL_MS},
        )
        bench_report.add("portal_cpu_ms_per_request", summary(own_cpu))
        bench_report.add("api_create_ms_excluding_cluster", summary(list(create_ms.values())))
        bench_report.add("api_create_cpu_ms", summary(list(create_cpu_ms.values())))
        bench_report.add("worker_ms_per_request_excluding_cluster", summary(worker_own))
        bench_report.add("tasks_per_request", statistics.median(task_counts))
        bench_report.add("check_interval_ms", CHECK_INTERVAL_MS)
        bench_report.add("database", connection.vendor)
        assert all_seconds <= TARGET_RATIO * single_seconds
        assert statistics.median(own) <= TARGET_PORTAL_MS
    finally:
        celery_app.conf.task_default_queue = previous_queue
        for worker in workers:
            worker.stop()
        cluster.terminate()
        cluster.wait(timeout=20)
