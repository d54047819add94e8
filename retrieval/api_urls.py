from django.urls import re_path

from retrieval import api

# With or without the trailing slash: clients of a search API rarely type it.
urlpatterns = [
    re_path(r"^search/?$", api.SearchView.as_view(), name="api-search"),
    re_path(r"^answers/?$", api.AnswerView.as_view(), name="api-answers"),
    re_path(r"^flags/?$", api.FlagListCreateView.as_view(), name="api-flag-list"),
    re_path(r"^flags/(?P<pk>[0-9]+)/?$", api.FlagDetailView.as_view(), name="api-flag-detail"),
    re_path(r"^labelled-questions/?$", api.LabelledQuestionListCreateView.as_view(), name="api-labelled-question-list"),
]
