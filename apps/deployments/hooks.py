"""Where apps above deployments plug in, without deployments importing them.

- `transition_listeners`: called by `deploy_request_transition`, inside its transaction, after a
  request changed state (so what a listener writes commits or rolls back with the change).
  Incidents use it to open a draft on a failed rollout and to follow linked requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.deployments.models import DeployRequest

# (the request, already in its new state in memory; the state it left)
TransitionListener = Callable[["DeployRequest", str], None]

transition_listeners: list[TransitionListener] = []


def deploy_transitioned(deploy: DeployRequest, previous: str) -> None:
    for listener in transition_listeners:
        listener(deploy, previous)
