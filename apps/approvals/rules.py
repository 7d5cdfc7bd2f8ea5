"""What a request needs before it may complete (frozen into the request when it opens), and the
parsers for the rule text people type (required tags, metric rules)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckSpec:
    """A named check from the registry, with its parameters; a required one blocks completion."""

    name: str
    required: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rules:
    required_approvals: int = 1
    # Only members of these teams may review (team slugs).
    reviewer_teams: tuple[str, ...] = ()
    # At least one counted approval must come from each of these teams.
    required_teams: tuple[str, ...] = ()
    # Besides the requester, nobody from the requester's teams may review.
    bar_requester_team: bool = False
    wait_minutes: int = 0
    expires_after_hours: int | None = 72
    checks: tuple[CheckSpec, ...] = ()
    # Filled in when the request opens: the requester's teams at that moment.
    requester_teams: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [asdict(check) for check in self.checks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rules:
        return cls(
            required_approvals=int(data.get("required_approvals", 1)),
            reviewer_teams=tuple(data.get("reviewer_teams", ())),
            required_teams=tuple(data.get("required_teams", ())),
            bar_requester_team=bool(data.get("bar_requester_team", False)),
            wait_minutes=int(data.get("wait_minutes", 0)),
            expires_after_hours=data.get("expires_after_hours"),
            checks=tuple(CheckSpec(**check) for check in data.get("checks", ())),
            requester_teams=tuple(data.get("requester_teams", ())),
        )


@dataclass(frozen=True)
class MetricRule:
    metric: str
    higher_is_better: bool
    tolerance: float


def parse_tag_requirements(text: str) -> dict[str, str]:
    """`a=b, c=d` → {"a": "b", "c": "d"}; raises ValueError naming a malformed item."""
    wanted = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"“{item}” is not key=value")
        wanted[key.strip()] = value.strip()
    return wanted


def parse_metric_rules(text: str) -> list[MetricRule]:
    """Lines of `metric higher|lower tolerance`; raises ValueError naming a malformed line."""
    rules = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        parts = line.split()
        if len(parts) not in (2, 3) or parts[1] not in ("higher", "lower"):
            raise ValueError(f"“{line}” is not “metric higher|lower [tolerance]”")
        try:
            tolerance = float(parts[2]) if len(parts) == 3 else 0.0
        except ValueError:
            raise ValueError(f"“{parts[2]}” is not a number (in “{line}”)") from None
        if tolerance < 0 or not math.isfinite(tolerance):
            raise ValueError(f"The tolerance in “{line}” must be zero or more")
        rules.append(MetricRule(parts[0], parts[1] == "higher", tolerance))
    return rules
