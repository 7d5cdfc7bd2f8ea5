"""An environment's protection rules, applied: who must approve, and what blocks a deploy now.

Approvals, checks and the wait timer become `Rules` for the approvals engine. Freezes, deny
windows and promotion order are judged here, at request time (and again before a worker
starts), each with a message that says what blocks and until when. Staff may bypass these three
with a reason; approvals are never bypassed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from apps.approvals.rules import Rules
from apps.catalog.models import ModelVersion
from apps.deployments.models import DeployFreeze, Environment, ProtectionRules, Release
from apps.deployments.windows import closed_window

FREEZE = "freeze"
WINDOW = "window"
PROMOTION = "promotion"


@dataclass(frozen=True)
class Blocker:
    """Why a deploy may not start now; `kind` is freeze, window or promotion."""

    kind: str
    message: str


def rules_of(environment: Environment) -> ProtectionRules:
    """The environment's rules; an environment that never had any gets the defaults (unsaved)."""
    try:
        return environment.protection
    except ProtectionRules.DoesNotExist:
        return ProtectionRules(environment=environment, mlflow_alias=environment.slug)


def approval_rules(protection: ProtectionRules) -> Rules | None:
    """The approvals engine's rules for a deploy here, or None when nothing needs reviewing."""
    if not (protection.required_approvals or protection.wait_minutes or protection.rule_checks()):
        return None
    return protection.to_rules()


def describe_rules(rules: Rules | None) -> list[str]:
    """The rules in words, for the form's preview and the API's dry run."""
    if rules is None:
        return ["No approval needed: the request goes straight to the queue."]
    lines = []
    if rules.required_approvals:
        teams = ", ".join(rules.reviewer_teams) or "nobody (no approver team is set)"
        lines.append(f"{rules.required_approvals} approval(s) from {teams}; never the requester.")
    for team in rules.required_teams:
        lines.append(f"At least one approval from {team}.")
    if rules.bar_requester_team:
        lines.append("Nobody from the requester's teams may approve.")
    if rules.wait_minutes:
        lines.append(f"Waits {rules.wait_minutes} min after opening before it may deploy.")
    for check in rules.checks:
        if check.name == "version_has_tags":
            wanted = ", ".join(f"{k}={v}" for k, v in check.params["tags"].items())
            lines.append(f"Check: the version carries {wanted}.")
        elif check.name == "model_card_approved":
            lines.append("Check: the model card is approved.")
        elif check.name == "metrics_no_worse":
            metrics = ", ".join(rule["metric"] for rule in check.params["rules"])
            lines.append(f"Check: {metrics} no worse than the version live here.")
    return lines


def describe_environment(environment: Environment, *, now: datetime) -> list[str]:
    """Every rule of an environment in words: approvals and checks, windows, order, freezes."""
    protection = rules_of(environment)
    lines = describe_rules(approval_rules(protection))
    for window in protection.deny_windows.splitlines():
        if window.split("#", 1)[0].strip():
            lines.append(f"No deploys during {window.strip()} ({protection.window_timezone}).")
    previous = previous_environment(environment)
    if protection.requires_previous_environment and previous is not None:
        soak = f" for {protection.soak_minutes} min" if protection.soak_minutes else ""
        lines.append(f"Promotion order: the version must have been live in {previous.name}{soak}.")
    for freeze in DeployFreeze.objects.filter(DeployFreeze.active_q(now), environment=environment):
        until = f" until {freeze.ends_at:%Y-%m-%d %H:%M} UTC" if freeze.ends_at else ""
        lines.append(f"Frozen{until}: {freeze.reason}")
    return lines


def previous_environment(environment: Environment) -> Environment | None:
    """The environment just before this one on the promotion path."""
    return (
        Environment.objects.filter(order__lt=environment.order).order_by("-order").first()
        if environment.order is not None
        else None
    )


def _promotion_blocker(
    protection: ProtectionRules, environment: Environment, version: ModelVersion, now: datetime
) -> Blocker | None:
    if not protection.requires_previous_environment:
        return None
    previous = previous_environment(environment)
    if previous is None:
        return None
    soak = timedelta(minutes=protection.soak_minutes)
    releases = Release.objects.filter(environment=previous, version=version)
    # Live now and for long enough, or live long enough before it was replaced.
    long_enough = releases.filter(
        Q(live_until__isnull=True, live_from__lte=now - soak) | Q(live_until__isnull=False)
    )
    if any(
        release.live_until is None or release.live_until - release.live_from >= soak
        for release in long_enough.only("live_from", "live_until")[:50]
    ):
        return None
    label = f"v{version.version}"
    if not releases.exists():
        return Blocker(
            PROMOTION,
            f"Promotion order: {label} has not been live in {previous.name} yet; "
            f"deploy it there first.",
        )
    live = releases.filter(live_until__isnull=True).first()
    if live is not None:
        ready_at = live.live_from + soak
        return Blocker(
            PROMOTION,
            f"Promotion order: {label} must soak in {previous.name} for "
            f"{protection.soak_minutes} min; it may come here from {ready_at:%Y-%m-%d %H:%M} UTC.",
        )
    return Blocker(
        PROMOTION,
        f"Promotion order: {label} was live in {previous.name} for less than "
        f"{protection.soak_minutes} min.",
    )


def blockers(
    environment: Environment, version: ModelVersion, *, now: datetime, rollback: bool = False
) -> list[Blocker]:
    """Everything that stops this version going to this environment right now.

    Rollbacks restore what was running, so freezes, windows and promotion order never stop them.
    """
    if rollback:
        return []
    found = schedule_blockers(environment, now=now)
    promotion = _promotion_blocker(rules_of(environment), environment, version, now)
    if promotion is not None:
        found.append(promotion)
    return found


def schedule_blockers(environment: Environment, *, now: datetime) -> list[Blocker]:
    """The freeze or deny window closing this environment right now, whatever the version."""
    found = []
    protection = rules_of(environment)
    freeze = (
        DeployFreeze.objects.filter(DeployFreeze.active_q(now), environment=environment)
        .order_by("-starts_at")
        .first()
    )
    if freeze is not None:
        until = f" until {freeze.ends_at:%Y-%m-%d %H:%M} UTC" if freeze.ends_at else ""
        found.append(Blocker(FREEZE, f"{environment.name} is frozen{until}: {freeze.reason}"))
    closed = closed_window(protection.deny_windows, protection.window_timezone, now)
    if closed is not None:
        found.append(
            Blocker(
                WINDOW,
                f"{environment.name} takes no deploys during {closed.window.text} "
                f"({protection.window_timezone}); it opens again "
                f"{closed.opens_at:%a %Y-%m-%d %H:%M}.",
            )
        )
    return found
