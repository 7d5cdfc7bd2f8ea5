"""Cards the approvals app adds to the catalog's model and version pages (through its hooks)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.approvals import promotions, selectors
from apps.approvals.forms import PromotionForm
from apps.catalog import hooks

HISTORY_ROWS = 10


def model_aliases_section(request: HttpRequest, model: Any, version: Any) -> hooks.PageSection:
    """Aliases with their protection and approvers, the move form, and promotion history."""
    history = list(selectors.promotions_of_model(model.pk)[:HISTORY_ROWS])
    approvals = selectors.approvals_by_promotion(history)
    last_applied: dict[str, Any] = {}
    for promotion in history:
        if promotion.state == promotion.State.APPLIED and promotion.alias not in last_applied:
            last_applied[promotion.alias] = approvals.get(promotion.pk)
    policies = list(selectors.policies())
    aliases = [
        {
            "alias": alias.alias,
            "version": alias.version,
            "protected": promotions.policy_for(alias.alias, policies) is not None,
            "approval": last_applied.get(alias.alias),
        }
        for alias in model.aliases.all()
    ]
    rows = [{"promotion": p, "approval": approvals.get(p.pk)} for p in history]
    return hooks.PageSection(
        template="approvals/sections/model_aliases.html",
        context={
            "model": model,
            "aliases": aliases,
            "history": rows,
            "form": PromotionForm(),
            "patterns": [policy.alias_pattern for policy in policies],
        },
    )


def version_promotions_section(
    request: HttpRequest, model: Any, version: Any
) -> hooks.PageSection | None:
    history = list(selectors.promotions_of_model(model.pk).filter(version=version)[:HISTORY_ROWS])
    if not history:
        return None
    approvals = selectors.approvals_by_promotion(history)
    rows = [{"promotion": p, "approval": approvals.get(p.pk)} for p in history]
    return hooks.PageSection(
        template="approvals/sections/version_promotions.html", context={"history": rows}
    )


hooks.model_page_sections.append(model_aliases_section)
hooks.version_page_sections.append(version_promotions_section)
