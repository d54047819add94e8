from django.urls import path

from retrieval import views

app_name = "retrieval"
urlpatterns = [
    path("ask/", views.ask, name="ask"),
    path("ask/entries/", views.entry_suggestions, name="entry-suggestions"),
    path("ask/<int:question_id>/", views.question_detail, name="question-detail"),
    path("ask/<int:question_id>/flag/", views.flag_create, name="flag-create"),
    path("flags/", views.flag_list, name="flag-list"),
    path("flags/<int:flag_id>/status/", views.flag_set_status, name="flag-status"),
]
