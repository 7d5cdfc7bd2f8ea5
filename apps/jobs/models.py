"""How many times beat has re-driven each kind of hand-off: a counter kept in the database, so
every process (web, worker, beat) reports the same total to Prometheus."""

from __future__ import annotations

from django.db import models


class RedriveCount(models.Model):
    """Re-drives of one kind so far (`modelport_redrives_total{kind}`); it only grows."""

    kind = models.CharField(max_length=40, primary_key=True)
    total = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.kind}: {self.total}"
