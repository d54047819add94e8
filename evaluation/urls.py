from django.urls import path

from evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("versions/", views.version_list, name="version-list"),
    path("versions/history/", views.history, name="history"),
    path("versions/leaderboard/", views.leaderboard, name="leaderboard"),
    path("versions/leaderboard/run/", views.leaderboard_run, name="leaderboard-run"),
    path("versions/rollback/", views.version_rollback, name="version-rollback"),
    path("versions/<int:version_id>/", views.version_detail, name="version-detail"),
    path("versions/<int:version_id>/promote/", views.version_promote, name="version-promote"),
    path("versions/<int:version_id>/evaluate/", views.version_evaluate, name="version-evaluate"),
    path("versions/<int:version_id>/report/", views.version_report, name="version-report"),
    path("versions/<int:version_id>/report.json", views.version_report_json, name="version-report-json"),
    path("versions/<int:version_id>/report.csv", views.version_report_csv, name="version-report-csv"),
    path("versions/<int:version_id>/export.zip", views.version_export_zip, name="version-export"),
]
