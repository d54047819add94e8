from django.urls import path

from training import guideline_views

# Included by training/urls.py under "guidelines/", in the "training" namespace.
urlpatterns = [
    path("", guideline_views.guideline_list, name="guideline-list"),
    path("new/", guideline_views.guideline_create, name="guideline-create"),
    path("for/", guideline_views.guideline_show, name="guideline-show"),
    path("<int:guideline_id>/", guideline_views.guideline_detail, name="guideline-detail"),
    path("<int:guideline_id>/edit/", guideline_views.guideline_edit, name="guideline-edit"),
    path("<int:guideline_id>/history/", guideline_views.guideline_history, name="guideline-history"),
]
