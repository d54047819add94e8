from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config.auth_views import ThrottledLoginView, ThrottledObtainAuthToken

api_patterns = [
    # Before the apps' routes: this replaces glossary/api_urls.py's plain token view (same URL and name), with the
    # brute-force limit of config.login_throttle.
    path("auth/token/", ThrottledObtainAuthToken.as_view(), name="api-token"),
    path("", include("glossary.api_urls")),
    path("", include("retrieval.api_urls")),
    path("", include("training.api_urls")),
    path("", include("evaluation.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="glossary:entry-list", permanent=False), name="home"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("glossary/", include("glossary.urls")),
    path("", include("retrieval.urls")),
    path("", include("training.urls")),
    path("", include("evaluation.urls")),
]
