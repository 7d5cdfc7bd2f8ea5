from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apps.audit import selectors
from apps.audit.forms import AuditFilterForm
from apps.audit.permissions import can_view_audit_log
from apps.web.http import HtmxHttpRequest, render_page_or_partial

PAGE_SIZE = 50


@require_GET
@vary_on_headers("HX-Request")
def audit_event_list_view(request: HtmxHttpRequest) -> HttpResponse:
    if not can_view_audit_log(request.user):
        raise PermissionDenied("The audit log is open to staff only.")
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = selectors.audit_events_filtered(**filters).select_related("actor")
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "audit/event_list.html",
        "results",
        {"form": form, "page": page, "actions": selectors.audit_actions()},
    )
