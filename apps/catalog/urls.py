from django.urls import path

from apps.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.model_list_view, name="model-list"),
    path("sync/", views.registry_sync_now_view, name="sync-now"),
    path("models/<int:pk>/", views.model_detail_view, name="model-detail"),
    path("models/<int:pk>/owner/", views.model_owner_view, name="model-owner"),
    path("models/<int:pk>/card/", views.model_card_edit_view, name="card-edit"),
    path(
        "models/<int:pk>/card/<str:transition>/",
        views.model_card_transition_view,
        name="card-transition",
    ),
    path("models/<int:pk>/compare/", views.version_compare_view, name="version-compare"),
    path(
        "models/<int:pk>/versions/<int:number>/",
        views.version_detail_view,
        name="version-detail",
    ),
]
