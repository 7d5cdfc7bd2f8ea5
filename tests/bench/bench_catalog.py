"""Catalog benchmark against a real MLflow server holding 10,000 models × 5 versions.

Figures (written to var/bench/catalog.json):
- full sync time vs. merely paging the same data with MlflowClient, in the same run;
- unchanged re-sync (incremental and full): time and catalog rows written;
- catalog API over HTTP (gunicorn, PostgreSQL when DATABASE_URL points at it) side by side with
  MLflow's own registered-models/search: latency of a 100-model page and of a name search, and
  requests/s under 8 concurrent keep-alive connections for 10 s;
- webhook-to-visible latency through a real Celery worker.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import api_token_create
from apps.catalog.mlflow_server import start_mlflow_server, stop_mlflow_server
from apps.catalog.models import ModelAlias, ModelVersion, RegisteredModel, RegistrySyncState
from apps.catalog.registry import MODEL_PAGE_SIZE, VERSION_PAGE_SIZE, Registry
from apps.catalog.sync import SyncMode, registry_sync
from tests.accounts.factories import UserFactory
from tests.bench.conftest import summary
from tests.bench.registry_fixture import populate
from tests.fixtures.mlflow import free_port
from tests.fixtures.workers import WorkerProcess, database_url_for_tests

MODELS = int(os.environ.get("BENCH_MODELS", "10000"))
VERSIONS_PER_MODEL = 5
LATENCY_REQUESTS = 100
LOAD_SECONDS = 10
LOAD_CONNECTIONS = 8
WEBHOOK_SAMPLES = 20
CATALOG_WRITE = re.compile(
    r'^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"?catalog_(registeredmodel|modelversion|modelalias)',
    re.IGNORECASE,
)

pytestmark = pytest.mark.django_db(transaction=True)


def page_all_with_mlflow_client(uri: str) -> tuple[int, int]:
    """What any sync must at least do: page every model and version through MlflowClient."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    models = versions = 0
    token = None
    while True:
        page = client.search_registered_models(
            max_results=MODEL_PAGE_SIZE, order_by=["name ASC"], page_token=token
        )
        models += len(page)
        token = page.token
        if not token:
            break
    token = None
    while True:
        version_page = client.search_model_versions(
            max_results=VERSION_PAGE_SIZE,
            order_by=["name ASC", "version_number DESC"],
            page_token=token,
        )
        versions += len(version_page)
        token = version_page.token
        if not token:
            break
    return models, versions


def mlflow_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def timed_seconds(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class Endpoint:
    """A keep-alive HTTP client for one server; each thread makes its own."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = headers or {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> tuple[int, float]:
        start = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - start) * 1000


def latency_side_by_side(
    portal: Endpoint, mlflow: Endpoint, portal_path: str, mlflow_path: str
) -> dict:
    for _ in range(5):
        assert portal.get(portal_path)[0] == 200
        assert mlflow.get(mlflow_path)[0] == 200
    portal_ms, mlflow_ms = [], []
    for _ in range(LATENCY_REQUESTS):  # interleaved, so both see the same machine noise
        status, ms = portal.get(portal_path)
        assert status == 200
        portal_ms.append(ms)
        status, ms = mlflow.get(mlflow_path)
        assert status == 200
        mlflow_ms.append(ms)
    portal_summary, mlflow_summary = summary(portal_ms), summary(mlflow_ms)
    return {
        "portal": portal_summary,
        "mlflow": mlflow_summary,
        "median_speedup": round(mlflow_summary["median_ms"] / portal_summary["median_ms"], 1),
    }


def load(port: int, path: str, headers: dict[str, str]) -> dict:
    """LOAD_CONNECTIONS threads, one keep-alive connection each, for LOAD_SECONDS."""
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + LOAD_SECONDS

    def worker() -> None:
        endpoint = Endpoint(port, headers)
        ok = errors = 0
        while time.monotonic() < stop_at:
            try:
                status, _ = endpoint.get(path)
            except (OSError, http.client.HTTPException):
                errors += 1
                endpoint = Endpoint(port, headers)
                continue
            if status == 200:
                ok += 1
            else:
                errors += 1
        with lock:
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=worker) for _ in range(LOAD_CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**counts, "requests_per_second": round(counts["ok"] / LOAD_SECONDS, 1)}


def empty_catalog() -> None:
    """Forget the mirror (and the sync state) so the next sync starts from nothing again."""
    tables = [
        model._meta.db_table
        for model in (ModelAlias, ModelVersion, RegisteredModel, RegistrySyncState)
    ]
    with connection.cursor() as cursor:
        for statement in connection.ops.sql_flush(no_style(), tables, allow_cascade=True):
            cursor.execute(statement)


def start_portal(port: int, extra_env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "3", "--worker-class", "gthread", "--threads", "2", "--keep-alive", "30",
         "--graceful-timeout", "5"],
        env=env, cwd=settings.BASE_DIR, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if Endpoint(port).get("/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(log_path.read_text()[-3000:])


def targets_missed(figures: dict) -> list[str]:
    """The issue's targets this run missed; checked once every figure has been written."""
    checks = [
        ("full sync ≤ 30% over bare paging", figures["full_sync"]["overhead_percent"] <= 30),
        (
            "unchanged re-sync ≤ 10% of a full sync",
            figures["unchanged_resync_incremental"]["percent_of_full_sync"] <= 10,
        ),
        ("webhook to visible median ≤ 1 s", figures["webhook_to_visible"]["median_ms"] <= 1000),
    ]
    for name in ("api_list_100", "api_name_search"):
        side_by_side = figures[name]
        checks += [
            (f"{name} median ≤ 12 ms", side_by_side["portal"]["median_ms"] <= 12),
            (f"{name} p95 ≤ 50 ms", side_by_side["portal"]["p95_ms"] <= 50),
            (f"{name} ≥ 3× faster than MLflow", side_by_side["median_speedup"] >= 3),
        ]
    load = figures["load_8_connections_10s"]
    checks += [
        ("8 connections: ≥ 5× MLflow's requests/s", load["throughput_ratio"] >= 5),
        ("8 connections: no errors", load["portal"]["errors"] == 0),
    ]
    return [name for name, met in checks if not met]


def test_bench_catalog(bench_report, tmp_path: Path, settings) -> None:
    data_dir = tmp_path / "mlflow"
    port = free_port()
    mlflow = start_mlflow_server(port=port, data_dir=data_dir, log_path=tmp_path / "mlflow.log")
    portal = worker = None
    uri = f"http://127.0.0.1:{port}"
    settings.MLFLOW_TRACKING_URI = uri
    try:
        seconds, rows = timed_seconds(
            lambda: populate(
                data_dir / "mlflow.db", models=MODELS, versions_per_model=VERSIONS_PER_MODEL
            )
        )
        bench_report.add("registry", {**rows, "populate_seconds": round(seconds, 2)})
        bench_report.add("database", connection.vendor)

        # --- sync vs. bare paging -------------------------------------------------------------
        paging = []
        for _ in range(2):
            seconds, seen = timed_seconds(lambda: page_all_with_mlflow_client(uri))
            assert seen == (MODELS, MODELS * VERSIONS_PER_MODEL)
            paging.append(seconds)
        # Best of two on both sides: one sample of either varies by a third on a busy machine.
        syncs = []
        for run in range(2):
            if run:
                empty_catalog()
            seconds, counts = timed_seconds(
                lambda: registry_sync(mode=SyncMode.FULL, registry=Registry(uri))
            )
            assert counts.models_created == MODELS
            assert counts.versions_created == MODELS * VERSIONS_PER_MODEL
            syncs.append(seconds)
        full_seconds, paging_seconds = min(syncs), min(paging)
        bench_report.add(
            "full_sync",
            {
                "sync_seconds": round(full_seconds, 2),
                "bare_paging_seconds": round(paging_seconds, 2),
                "sync_runs_seconds": [round(s, 2) for s in syncs],
                "paging_runs_seconds": [round(s, 2) for s in paging],
                "overhead_percent": round((full_seconds / paging_seconds - 1) * 100, 1),
                "target_overhead_percent": 30,
            },
        )

        for mode in (SyncMode.INCREMENTAL, SyncMode.FULL):
            with CaptureQueriesContext(connection) as queries:
                seconds, counts = timed_seconds(
                    lambda mode=mode: registry_sync(mode=mode, registry=Registry(uri))
                )
            writes = [q for q in queries.captured_queries if CATALOG_WRITE.match(q["sql"])]
            assert counts.changed == 0 and writes == []
            bench_report.add(
                f"unchanged_resync_{mode}",
                {
                    "seconds": round(seconds, 3),
                    "percent_of_full_sync": round(seconds / full_seconds * 100, 1),
                    "catalog_rows_written": len(writes),
                    "target_percent": 10,
                },
            )

        # --- the API over HTTP, side by side with MLflow ---------------------------------------
        user = UserFactory(username="bench-reader")
        _, token = api_token_create(user=user, name="bench", expires_in_days=1)
        auth = {"Authorization": f"Bearer {token}"}
        queue = f"modelport-bench-{uuid.uuid4().hex[:8]}"
        secret = uuid.uuid4().hex
        portal_port = free_port()
        shared_env = {
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_WEBHOOK_SECRET": secret,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
        }
        portal = start_portal(portal_port, shared_env, tmp_path / "gunicorn.log")
        portal_api, mlflow_api = Endpoint(portal_port, auth), Endpoint(port)
        search_filter = quote("name LIKE '%fraud%'")
        bench_report.add(
            "api_list_100",
            latency_side_by_side(
                portal_api,
                mlflow_api,
                "/api/v1/models/?page_size=100",
                "/api/2.0/mlflow/registered-models/search?max_results=100",
            ),
        )
        bench_report.add(
            "api_list_100_page_50",
            latency_side_by_side(
                portal_api,
                mlflow_api,
                f"/api/v1/models/?page_size=100&page={MODELS // 200}",
                # MLflow's page token is base64 of {"offset": N}: the same page, its way.
                "/api/2.0/mlflow/registered-models/search?max_results=100&page_token="
                + quote(mlflow_page_token((MODELS // 200 - 1) * 100)),
            ),
        )
        bench_report.add(
            "api_name_search",
            latency_side_by_side(
                portal_api,
                mlflow_api,
                "/api/v1/models/?page_size=100&search=fraud",
                f"/api/2.0/mlflow/registered-models/search?max_results=100&filter={search_filter}",
            ),
        )
        portal_load = load(portal_port, "/api/v1/models/?page_size=100", auth)
        mlflow_load = load(port, "/api/2.0/mlflow/registered-models/search?max_results=100", {})
        bench_report.add(
            "load_8_connections_10s",
            {
                "portal": portal_load,
                "mlflow": mlflow_load,
                "throughput_ratio": round(
                    portal_load["requests_per_second"]
                    / max(mlflow_load["requests_per_second"], 0.1),
                    1,
                ),
                "target_ratio": 5,
            },
        )

        # --- webhook to visible, through a real worker ----------------------------------------
        worker = WorkerProcess(queue=queue, log_dir=tmp_path, extra_env=shared_env)
        worker.start()
        registry = Registry(uri)
        registry.ensure_webhook(url=f"http://127.0.0.1:{portal_port}/hooks/mlflow/", secret=secret)
        time.sleep(1.5)  # MLflow's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1 on this server)
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        name = "fraud-scorer-00000"
        latencies = []
        for _ in range(WEBHOOK_SAMPLES):
            version = int(client.create_model_version(name, source="s3://bench/hooked").version)
            started = time.perf_counter()
            while not ModelVersion.objects.filter(model__name=name, version=version).exists():
                if time.perf_counter() - started > 15:
                    raise AssertionError(f"v{version} not visible after 15 s:\n{worker.log()}")
                time.sleep(0.01)
            latencies.append((time.perf_counter() - started) * 1000)
        bench_report.add("webhook_to_visible", {**summary(latencies), "target_median_ms": 1000})
        assert (
            RegisteredModel.objects.get(name=name).latest_version
            == VERSIONS_PER_MODEL + WEBHOOK_SAMPLES
        )
        assert targets_missed(bench_report.figures) == []
    finally:
        if worker is not None:
            worker.stop()
        if portal is not None:
            portal.terminate()
            try:
                portal.wait(timeout=10)
            except subprocess.TimeoutExpired:
                portal.kill()
                portal.wait(timeout=10)
        stop_mlflow_server(mlflow)
