from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import oidc
from config.auth_views import ThrottledLoginView, ThrottledObtainAuthToken

api_patterns = [
    # API tokens for a username and password, with the brute-force limit of config.login_throttle.
    path("auth/token/", ThrottledObtainAuthToken.as_view(), name="api-token"),
    path("", include("glossary.api_urls")),
    path("", include("retrieval.api_urls")),
    path("", include("training.api_urls")),
    path("", include("evaluation.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Our Redoc page: drf-spectacular's without its Google Fonts links (the docs must work offline).
    path("redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"), name="redoc"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="glossary:entry-list", permanent=False), name="home"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    # Django's logout, which also closes a session opened through the SSO provider (config/oidc.py).
    path("accounts/logout/", oidc.LogoutView.as_view(), name="logout"),
    # Single sign-on (OpenID Connect): 404 unless configured. The names are mozilla-django-oidc's.
    path("oidc/authenticate/", login_not_required(oidc.OIDCLoginView.as_view()), name="oidc_authentication_init"),
    path("oidc/callback/", login_not_required(oidc.OIDCCallbackView.as_view()), name="oidc_authentication_callback"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("glossary/", include("glossary.urls")),
    path("", include("retrieval.urls")),
    path("", include("training.urls")),
    path("", include("evaluation.urls")),
    path("", include("jobs.urls")),
]
