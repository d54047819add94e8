from django.urls import path

from training import workbench_views

# Included by training/urls.py under "workbench/", in the "training" namespace.
urlpatterns = [
    path("", workbench_views.workbench_page, name="workbench"),
    path("next/", workbench_views.workbench_next, name="workbench-next"),
    path("items/<int:item_id>/decide/", workbench_views.workbench_decide, name="workbench-decide"),
    path("undo/", workbench_views.workbench_undo, name="workbench-undo"),
    path("refresh/", workbench_views.workbench_refresh, name="workbench-refresh"),
    path("overlap/", workbench_views.overlap_page, name="workbench-overlap"),
    path("adjudication/", workbench_views.adjudication_page, name="workbench-adjudication"),
    path("adjudication/<int:item_id>/settle/", workbench_views.adjudication_settle, name="workbench-adjudicate"),
    path("agreement/", workbench_views.agreement_page, name="workbench-agreement"),
    path("experts/", workbench_views.expert_list_page, name="workbench-experts"),
    path("experts/<int:user_id>/", workbench_views.expert_page, name="workbench-expert"),
    path("me/", workbench_views.expert_page, name="workbench-me"),
]
