from django.urls import path

from glossary import views

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
    path("imports/", views.import_list, name="import-list"),
    path("imports/new/", views.import_upload, name="import-upload"),
    path("imports/confirm/", views.import_confirm, name="import-confirm"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/retry/", views.import_retry, name="import-retry"),
    path("imports/<int:pk>/preview/", views.import_preview, name="import-preview"),
    path("export/", views.export, name="export"),
]
