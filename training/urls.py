from django.urls import include, path

from training import views

app_name = "training"
urlpatterns = [
    path("training/", views.run_list, name="run-list"),
    path("training/runs/", views.run_create, name="run-create"),
    path("training/runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("training/runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("training/snapshots/<int:snapshot_id>/download/", views.snapshot_download, name="snapshot-download"),
    path("training/config/", views.config_edit, name="config"),
    path("training/screening/", views.screening_list, name="screening"),
    path("training/screening/<int:candidate_id>/", views.screening_decide, name="screening-decide"),
    path("workbench/", include("training.workbench_urls")),
    path("guidelines/", include("training.guideline_urls")),
]
