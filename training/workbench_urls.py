from django.urls import path

from training import workbench_views

# Included by training/urls.py under "workbench/", in the "training" namespace.
urlpatterns = [
    path("", workbench_views.workbench_page, name="workbench"),
    path("next/", workbench_views.workbench_next, name="workbench-next"),
    path("items/<int:item_id>/decide/", workbench_views.workbench_decide, name="workbench-decide"),
    path("undo/", workbench_views.workbench_undo, name="workbench-undo"),
    path("refresh/", workbench_views.workbench_refresh, name="workbench-refresh"),
]
