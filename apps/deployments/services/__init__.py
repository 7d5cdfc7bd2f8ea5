"""The deployments app's verbs: every state change, in a transaction, with its audit event.

- environments: environments, their protection rules and freezes (staff);
- deploys: what people do before anything is applied (preview, request, revise, cancel);
- rollbacks: rollback requests, abort, "roll back to last good";
- execution: a worker applies a request and watches the rollout;
- finishing: a worker records success (the release, the alias) or failure (the rollback);
- sweep: what beat re-drives;
- transitions: the one way a request changes state, its events, and the after-commit enqueues.
"""

from apps.deployments.services.deploys import (
    APPROVAL_KIND,
    ActiveRequestExistsError,
    PolicyBlockedError,
    Preview,
    deploy_request_cancel,
    deploy_request_create,
    deploy_request_preview,
    deploy_request_revise,
)
from apps.deployments.services.environments import (
    EDITABLE_FIELDS,
    PROTECTION_FIELDS,
    deploy_freeze_create,
    deploy_freeze_lift,
    environment_create,
    environment_update,
    protection_rules_update,
)
from apps.deployments.services.execution import deploy_request_check, deploy_request_execute
from apps.deployments.services.finishing import deploy_request_fail, deploy_request_finish
from apps.deployments.services.rollbacks import (
    deploy_request_abort,
    deploy_rollback_open,
    release_rollback,
)
from apps.deployments.services.sweep import deploy_sweep, release_alias_move

__all__ = [
    "APPROVAL_KIND",
    "EDITABLE_FIELDS",
    "PROTECTION_FIELDS",
    "ActiveRequestExistsError",
    "PolicyBlockedError",
    "Preview",
    "deploy_freeze_create",
    "deploy_freeze_lift",
    "deploy_request_abort",
    "deploy_request_cancel",
    "deploy_request_check",
    "deploy_request_create",
    "deploy_request_execute",
    "deploy_request_fail",
    "deploy_request_finish",
    "deploy_request_preview",
    "deploy_request_revise",
    "deploy_rollback_open",
    "deploy_sweep",
    "environment_create",
    "environment_update",
    "protection_rules_update",
    "release_alias_move",
    "release_rollback",
]
