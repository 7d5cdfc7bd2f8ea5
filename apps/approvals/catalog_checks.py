"""The catalog's checks, registered with the engine.

A subject offers `candidate_version()` (the version to be promoted or deployed) and
`baseline_version()` (what it would replace: the alias's holder, or the live release).
"""

from __future__ import annotations

from typing import Any

from apps.approvals.registry import CheckOutcome, register_check
from apps.approvals.rules import MetricRule
from apps.catalog.models import ModelCard


def version_has_tags(subject: Any, params: dict[str, Any]) -> CheckOutcome:
    version = subject.candidate_version()
    wanted: dict[str, str] = params.get("tags", {})
    missing = [f"{k}={v}" for k, v in wanted.items() if version.tags.get(k) != v]
    if missing:
        return CheckOutcome(False, f"v{version.version} lacks tag(s): {', '.join(missing)}.")
    return CheckOutcome(
        True, f"v{version.version} has {', '.join(f'{k}={v}' for k, v in wanted.items())}."
    )


def model_card_approved(subject: Any, params: dict[str, Any]) -> CheckOutcome:
    version = subject.candidate_version()
    card = ModelCard.objects.filter(model_id=version.model_id).first()
    if card is None:
        return CheckOutcome(False, "The model has no card.")
    if card.status != ModelCard.Status.APPROVED:
        return CheckOutcome(False, f"The model card is {card.get_status_display().lower()}.")
    return CheckOutcome(True, f"The model card was approved on {card.approved_at:%Y-%m-%d}.")


def run_has_metrics(subject: Any, params: dict[str, Any]) -> CheckOutcome:
    version = subject.candidate_version()
    wanted: list[str] = params.get("metrics", [])
    missing = [name for name in wanted if name not in version.run_metrics]
    if missing:
        return CheckOutcome(
            False, f"The run of v{version.version} did not log: {', '.join(missing)}."
        )
    return CheckOutcome(True, f"The run logged {', '.join(wanted)}.")


def metrics_no_worse(subject: Any, params: dict[str, Any]) -> CheckOutcome:
    candidate = subject.candidate_version()
    baseline = subject.baseline_version()
    if baseline is None:
        return CheckOutcome(True, "Nothing to compare with: no version holds it now.")
    if baseline.pk == candidate.pk:
        return CheckOutcome(True, f"v{candidate.version} already holds it.")
    findings, worse = [], []
    for raw in params.get("rules", []):
        rule = MetricRule(**raw)
        new, old = candidate.run_metrics.get(rule.metric), baseline.run_metrics.get(rule.metric)
        if new is None or old is None:
            lacking = candidate if new is None else baseline
            worse.append(f"{rule.metric} missing on v{lacking.version}")
            continue
        delta = new - old if rule.higher_is_better else old - new
        line = f"{rule.metric} {new:.4g} vs {old:.4g}"
        if delta < -rule.tolerance:
            worse.append(f"{line} (worse by {abs(delta):.4g}, tolerance {rule.tolerance:g})")
        else:
            findings.append(line)
    if worse:
        return CheckOutcome(False, f"Worse than v{baseline.version}: " + "; ".join(worse) + ".")
    return CheckOutcome(True, f"No worse than v{baseline.version}: " + "; ".join(findings) + ".")


register_check("version_has_tags", version_has_tags, "The version carries the required tags.")
register_check("model_card_approved", model_card_approved, "The model card is approved.")
register_check("run_has_metrics", run_has_metrics, "The training run logged these metrics.")
register_check(
    "metrics_no_worse",
    metrics_no_worse,
    "The candidate's metrics are no worse than the version it replaces (within tolerance).",
)
