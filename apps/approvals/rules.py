"""What a request needs before it may complete: frozen into the request when it opens."""

from __future__ import annotations

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
