from django.urls import path

from retrieval import views

app_name = "retrieval"
urlpatterns = [
    path("ask/", views.ask, name="ask"),
    path("ask/entries/", views.entry_suggestions, name="entry-suggestions"),
    path("ask/<int:question_id>/", views.question_detail, name="question-detail"),
    path("ask/<int:question_id>/flag/", views.flag_create, name="flag-create"),
    path("ask/<int:question_id>/accept/", views.answer_accept, name="answer-accept"),
    path("flags/", views.flag_list, name="flag-list"),
    path("labelled-questions/", views.labelled_question_list, name="labelled-list"),
    path("labelled-questions/new/", views.labelled_question_create, name="labelled-create"),
    path("labelled-questions/import/", views.labelled_question_import, name="labelled-import"),
    path("labelled-questions/<int:labelled_id>/kind/", views.labelled_question_set_kind, name="labelled-kind"),
    path("labelled-questions/<int:labelled_id>/delete/", views.labelled_question_delete, name="labelled-delete"),
    path("flags/<int:flag_id>/status/", views.flag_set_status, name="flag-status"),
]
