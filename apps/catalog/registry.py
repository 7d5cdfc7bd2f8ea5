"""The MLflow adapter: the only module that talks to the Model Registry (through mlflow-skinny).

Everything MLflow returns is turned into the small frozen dataclasses below, and every MLflow
failure into `RegistryError` (or `RegistryUnavailable` when trying again later may help), so the
rest of the portal never sees an MLflow type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings

from apps.web.errors import UpstreamError

if TYPE_CHECKING:
    from mlflow.entities.webhook import WebhookEventStr

# Page sizes: MLflow caps registered-model pages at 1,000. Version pages may be far larger, and
# each page re-sorts the whole table server-side, so fewer, larger pages are much cheaper.
MODEL_PAGE_SIZE = 1000
VERSION_PAGE_SIZE = 10_000
RUN_BATCH_SIZE = 100
WEBHOOK_NAME = "modelport"
WEBHOOK_EVENTS: tuple[WebhookEventStr, ...] = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
UNAVAILABLE_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


class RegistryError(UpstreamError):
    """MLflow refused or failed a request; the message says what MLflow said."""

    default_code = "registry_error"


class RegistryUnavailable(RegistryError):
    """MLflow could not be reached or failed on its side; the same call may work later."""

    status_code = 503
    default_code = "registry_unavailable"


class RegistryNotFound(RegistryError):
    """The model, version or alias does not exist in MLflow."""


class RegistryNotConfigured(RegistryError):
    """MLFLOW_TRACKING_URI is not set."""


@dataclass(frozen=True)
class RegistryModel:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class RegistryVersion:
    name: str
    version: int
    run_id: str
    source: str
    status: str
    description: str
    tags: dict[str, str]
    created_by: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def ms_to_datetime(ms: int | None) -> datetime | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _translate(exc: Exception, doing: str) -> RegistryError:
    """One exception type for callers, keeping MLflow's own words."""
    from mlflow.exceptions import MlflowException

    if isinstance(exc, requests.RequestException):
        return RegistryUnavailable(f"MLflow unreachable while {doing}: {exc}")
    if isinstance(exc, MlflowException):
        code = exc.error_code
        message = exc.message
        if code == "RESOURCE_DOES_NOT_EXIST":
            return RegistryNotFound(f"{doing}: {message}")
        if code in UNAVAILABLE_CODES or exc.get_http_status_code() >= 500:
            return RegistryUnavailable(f"MLflow failed while {doing}: {message}")
        return RegistryError(f"MLflow refused {doing}: {message}")
    return RegistryUnavailable(f"MLflow failed while {doing}: {type(exc).__name__}: {exc}")


def _model_from(entity: Any) -> RegistryModel:
    return RegistryModel(
        name=entity.name,
        description=entity.description or "",
        tags=dict(entity.tags or {}),
        aliases={alias: int(version) for alias, version in (entity.aliases or {}).items()},
        created_ms=entity.creation_timestamp or 0,
        updated_ms=entity.last_updated_timestamp or 0,
    )


def _version_from(entity: Any) -> RegistryVersion:
    return RegistryVersion(
        name=entity.name,
        version=int(entity.version),
        run_id=entity.run_id or "",
        source=entity.source or "",
        status=entity.status or "",
        description=entity.description or "",
        tags=dict(entity.tags or {}),
        created_by=entity.user_id or "",
        created_ms=entity.creation_timestamp or 0,
        updated_ms=entity.last_updated_timestamp or 0,
    )


def _quote(value: str) -> str:
    """A string literal for MLflow's filter syntax."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Registry:
    """A connection to one MLflow tracking server's Model Registry."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        uri = tracking_uri if tracking_uri is not None else settings.MLFLOW_TRACKING_URI
        if not uri:
            raise RegistryNotConfigured(
                "MLFLOW_TRACKING_URI is not set; the catalog has no source."
            )
        from mlflow.tracking import MlflowClient

        self.tracking_uri = uri
        self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    # --- reading ---------------------------------------------------------------------------------
    def iter_models(
        self, *, page_size: int = MODEL_PAGE_SIZE, newest_first: bool = False
    ) -> Iterator[RegistryModel]:
        """Every registered model (prompts excluded), page by page."""
        order = ["last_updated_timestamp DESC", "name ASC"] if newest_first else ["name ASC"]
        token = None
        while True:
            try:
                page = self._client.search_registered_models(
                    max_results=page_size, order_by=order, page_token=token
                )
            except Exception as exc:
                raise _translate(exc, "listing registered models") from exc
            for entity in page:
                if (entity.tags or {}).get("mlflow.prompt.is_prompt") == "true":
                    continue
                yield _model_from(entity)
            token = page.token
            if not token:
                return

    def iter_versions(
        self,
        *,
        page_size: int = VERSION_PAGE_SIZE,
        newest_first: bool = False,
        model_name: str | None = None,
    ) -> Iterator[RegistryVersion]:
        """Every model version (or one model's), page by page."""
        order = (
            ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
            if newest_first
            else ["name ASC", "version_number DESC"]
        )
        filter_string = f"name = {_quote(model_name)}" if model_name is not None else None
        token = None
        while True:
            try:
                page = self._client.search_model_versions(
                    filter_string=filter_string,
                    max_results=page_size,
                    order_by=order,
                    page_token=token,
                )
            except Exception as exc:
                raise _translate(exc, "listing model versions") from exc
            for entity in page:
                if (entity.tags or {}).get("mlflow.prompt.is_prompt") == "true":
                    continue
                yield _version_from(entity)
            token = page.token
            if not token:
                return

    def get_model(self, name: str) -> RegistryModel:
        try:
            return _model_from(self._client.get_registered_model(name))
        except Exception as exc:
            raise _translate(exc, f"reading model {name!r}") from exc

    def fetch_runs(self, run_ids: list[str]) -> dict[str, RunSnapshot]:
        """Metrics and params of these runs, in batches; a run MLflow no longer has is absent."""
        from mlflow.entities import ViewType

        wanted = sorted({run_id for run_id in run_ids if run_id})
        if not wanted:
            return {}
        try:
            experiment_ids = [
                experiment.experiment_id
                for experiment in self._client.search_experiments(
                    view_type=ViewType.ALL, max_results=50_000
                )
            ]
        except Exception as exc:
            raise _translate(exc, "listing experiments") from exc
        snapshots: dict[str, RunSnapshot] = {}
        for start in range(0, len(wanted), RUN_BATCH_SIZE):
            batch = wanted[start : start + RUN_BATCH_SIZE]
            in_list = ", ".join(_quote(run_id) for run_id in batch)
            try:
                runs = self._client.search_runs(
                    experiment_ids=experiment_ids,
                    filter_string=f"attributes.run_id IN ({in_list})",
                    run_view_type=ViewType.ALL,
                    max_results=len(batch),
                )
            except Exception as exc:
                raise _translate(exc, "reading training runs") from exc
            for run in runs:
                snapshots[run.info.run_id] = RunSnapshot(
                    run_id=run.info.run_id,
                    metrics=dict(run.data.metrics),
                    params=dict(run.data.params),
                )
        return snapshots

    # --- writing what the portal owns: ownership tags, aliases, approval tags ---------------------
    def set_model_tag(self, name: str, key: str, value: str) -> None:
        try:
            self._client.set_registered_model_tag(name, key, value)
        except Exception as exc:
            raise _translate(exc, f"setting tag {key!r} on model {name!r}") from exc

    def delete_model_tag(self, name: str, key: str) -> None:
        try:
            self._client.delete_registered_model_tag(name, key)
        except Exception as exc:
            raise _translate(exc, f"deleting tag {key!r} of model {name!r}") from exc

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        try:
            self._client.set_model_version_tag(name, str(version), key, value)
        except Exception as exc:
            raise _translate(exc, f"setting tag {key!r} on {name!r} v{version}") from exc

    def set_alias(self, name: str, alias: str, version: int) -> None:
        try:
            self._client.set_registered_model_alias(name, alias, str(version))
        except Exception as exc:
            raise _translate(exc, f"pointing alias {alias!r} of {name!r} at v{version}") from exc

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self._client.delete_registered_model_alias(name, alias)
        except Exception as exc:
            raise _translate(exc, f"deleting alias {alias!r} of {name!r}") from exc

    def ensure_webhook(self, *, url: str, secret: str) -> tuple[str, bool]:
        """Create the portal's webhook or bring it up to date; returns (id, created)."""
        try:
            existing = [hook for hook in self._client.list_webhooks() if hook.name == WEBHOOK_NAME]
            if existing:
                hook = self._client.update_webhook(
                    existing[0].webhook_id,
                    url=url,
                    events=list(WEBHOOK_EVENTS),
                    secret=secret,
                    status="ACTIVE",
                )
                return hook.webhook_id, False
            hook = self._client.create_webhook(
                name=WEBHOOK_NAME,
                url=url,
                events=list(WEBHOOK_EVENTS),
                secret=secret,
                description="Keeps the Modelport catalog in sync.",
            )
            return hook.webhook_id, True
        except Exception as exc:
            raise _translate(exc, "registering the portal's webhook") from exc


def mlflow_ui_url(name: str, version: int | None = None) -> str:
    """Where a person sees this model (or version) in MLflow's own UI."""
    from urllib.parse import quote

    base = settings.MLFLOW_UI_URL or settings.MLFLOW_TRACKING_URI
    if not base:
        return ""
    url = f"{base}/#/models/{quote(name, safe='')}"
    return f"{url}/versions/{version}" if version is not None else url
