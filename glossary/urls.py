from django.urls import path

from glossary import import_views, views

app_name = "glossary"
urlpatterns = [
    path("", views.entry_list, name="entry-list"),
    path("entries/new/", views.entry_create, name="entry-create"),
    path("entries/bulk-status/", views.entries_bulk_status, name="entry-bulk-status"),
    path("entries/<int:pk>/", views.entry_detail, name="entry-detail"),
    path("entries/<int:pk>/edit/", views.entry_edit, name="entry-edit"),
    path("entries/<int:pk>/delete/", views.entry_delete, name="entry-delete"),
    path("entries/<int:pk>/status/", views.entry_set_status, name="entry-status"),
    path("domains/", views.domain_list, name="domain-list"),
    path("imports/", import_views.import_list, name="import-list"),
    path("imports/new/", import_views.import_upload, name="import-upload"),
    path("imports/confirm/", import_views.import_confirm, name="import-confirm"),
    path("imports/<int:pk>/", import_views.import_detail, name="import-detail"),
    path("imports/<int:pk>/retry/", import_views.import_retry, name="import-retry"),
    path("imports/<int:pk>/preview/", import_views.import_preview, name="import-preview"),
    path("export/", import_views.export, name="export"),
]
