"""What other apps plug into the engine: named checks and subject kinds.

The engine knows nothing of models, aliases or deployments. An app registers:
- checks: `register_check("version_has_tags", fn)`, where `fn(subject, params)` returns a
  `CheckOutcome`; a request's rules name the checks it needs;
- subject kinds: `register_subject(SubjectKind("deploy", on_approved=...))`; `on_approved`
  runs in a worker once the request is approved and must be safe to run twice, and
  `visible_subjects` says who may see a request (the engine cannot know who may read a subject).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet

from apps.accounts.models import User
from apps.approvals.models import ApprovalRequest


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    detail: str


CheckFunction = Callable[[Any, dict[str, Any]], CheckOutcome]

# The subjects of one kind a person may see, as a queryset of the subject's model. The engine
# never evaluates it: it becomes the subquery `subject_id IN (SELECT pk …)`, so a list of
# requests stays one query however many subjects the person may see.
VisibleSubjects = Callable[[User], QuerySet[Model]]


@dataclass(frozen=True)
class RegisteredCheck:
    name: str
    function: CheckFunction
    description: str


@dataclass(frozen=True)
class SubjectKind:
    kind: str
    # Runs in a worker after approval; must be idempotent (it may be delivered twice).
    on_approved: Callable[[ApprovalRequest], None]
    # Runs (in the closing transaction) when a request is rejected, expired or cancelled.
    on_closed: Callable[[ApprovalRequest], None] | None = None
    # Where a person sees the subject; "" when it has no page.
    url_of: Callable[[ApprovalRequest], str] | None = None
    # Errors from `on_approved` worth retrying later (an unreachable registry or cluster).
    transient: tuple[type[Exception], ...] = ()
    # What reviewers see about the subject on the request page: (template, context), or None.
    panel: Callable[[ApprovalRequest], tuple[str, dict[str, Any]] | None] | None = None
    # Who may see a request of this kind (its page, its API representation, its rows in lists):
    # the subjects a person may see. None: everyone signed in may see every request of the kind,
    # so a kind whose subjects are private must say so. Whoever opened a request and whoever its
    # rules ask to review may see it whatever this says (`selectors.approvals_visible_to`).
    visible_subjects: VisibleSubjects | None = None


class EffectInProgressError(Exception):
    """Another worker is carrying out this effect right now; try again later."""


CHECKS: dict[str, RegisteredCheck] = {}
SUBJECT_KINDS: dict[str, SubjectKind] = {}


def register_check(name: str, function: CheckFunction, description: str) -> None:
    CHECKS[name] = RegisteredCheck(name, function, description)


def register_subject(kind: SubjectKind) -> None:
    SUBJECT_KINDS[kind.kind] = kind


def subject_kind(kind: str) -> SubjectKind:
    try:
        return SUBJECT_KINDS[kind]
    except KeyError:
        raise LookupError(
            f"No subject kind {kind!r} is registered with the approvals engine."
        ) from None


def transient_errors() -> tuple[type[Exception], ...]:
    errors = {error for kind in SUBJECT_KINDS.values() for error in kind.transient}
    return (EffectInProgressError, *errors)
