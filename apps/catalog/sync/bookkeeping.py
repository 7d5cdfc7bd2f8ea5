"""The sync-state row: the lease that keeps two syncs apart, outages, and each sync's record."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.catalog.models import RegistrySyncState
from apps.catalog.sync.snapshot import Snapshot, SyncCounts, SyncMode

LEASE_SECONDS = 15 * 60


class SyncAlreadyRunningError(Exception):
    """Another full or incremental sync holds the lease."""


def sync_state() -> RegistrySyncState:
    state, _ = RegistrySyncState.objects.get_or_create(pk=RegistrySyncState.SINGLETON_ID)
    return state


def claim_lease() -> str:
    """Claim the sync lease with one conditional UPDATE; an expired lease can be taken over."""
    sync_state()
    token = str(uuid.uuid4())
    now = timezone.now()
    claimed = (
        RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_token=token, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    if not claimed:
        raise SyncAlreadyRunningError("A registry sync is already running.")
    return token


def release_lease(token: str) -> None:
    RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID, lease_token=token).update(
        lease_token="", lease_until=None
    )


def record_outage(exc: Exception) -> None:
    """Remember since when MLflow has been failing; the catalog pages show it."""
    now = timezone.now()
    RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID).update(
        last_error=str(exc)[:2000], last_error_at=now
    )
    RegistrySyncState.objects.filter(
        pk=RegistrySyncState.SINGLETON_ID, unreachable_since__isnull=True
    ).update(unreachable_since=now)


def record_finished(
    state: RegistrySyncState,
    *,
    mode: SyncMode,
    snapshot: Snapshot,
    counts: SyncCounts,
    started: float,
) -> None:
    """Record a finished sync: when, how long, what changed, and the watermarks it reached."""
    now = timezone.now()
    updates: dict[str, Any] = {
        "last_sync_at": now,
        "last_sync_mode": str(mode),
        "last_duration_ms": int((time.monotonic() - started) * 1000),
        "last_counts": counts.as_dict(),
        "unreachable_since": None,
        "last_error": "",
        "models_watermark_ms": max(
            [state.models_watermark_ms, *(m.updated_ms for m in snapshot.models)]
        ),
        "versions_watermark_ms": max(
            [state.versions_watermark_ms, *(v.updated_ms for v in snapshot.versions)]
        ),
    }
    if mode == SyncMode.FULL:
        updates["last_full_sync_at"] = now
    RegistrySyncState.objects.filter(pk=RegistrySyncState.SINGLETON_ID).update(**updates)
