from django.urls import path

from apps.approvals import views

app_name = "approvals"
urlpatterns = [
    path("", views.request_list_view, name="request-list"),
    path("<int:pk>/", views.request_detail_view, name="request-detail"),
    path("<int:pk>/review/", views.review_submit_view, name="review-submit"),
    path("<int:pk>/checks/", views.checks_rerun_view, name="checks-rerun"),
    path("<int:pk>/cancel/", views.request_cancel_view, name="request-cancel"),
    path("promote/<int:model_pk>/", views.promote_view, name="promote"),
    path("promotions/<int:pk>/version/", views.promotion_version_view, name="promotion-version"),
    path("policies/", views.policy_list_view, name="policy-list"),
    path("policies/new/", views.policy_edit_view, name="policy-create"),
    path("policies/<int:pk>/", views.policy_edit_view, name="policy-edit"),
    path("policies/<int:pk>/delete/", views.policy_delete_view, name="policy-delete"),
]
