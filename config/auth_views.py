"""Sign-in views with the brute-force limit of config.login_throttle: 429 once an address is locked out."""
from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.utils.translation import gettext as _
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled, ValidationError

from config import login_throttle


def locked_out_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return _("Too many failed sign-in attempts. Try again in %(minutes)d minute(s).") % {"minutes": minutes}


class ThrottledObtainAuthToken(ObtainAuthToken):
    """``POST /api/auth/token/``: DRF's token view; a locked-out address gets 429 with a reason."""

    def post(self, request, *args, **kwargs):
        try:
            response = super().post(request, *args, **kwargs)
        except ValidationError:
            seconds = getattr(request, login_throttle.LOCKED_OUT_ATTRIBUTE, 0)
            if seconds:
                raise Throttled(wait=seconds, detail=locked_out_message(seconds)) from None
            raise
        # A token is not a session login (no user_logged_in signal): clear the counter here.
        login_throttle.record_success(username=str(request.data.get("username") or ""), address=login_throttle.client_address(request))
        return response


class ThrottledLoginView(auth_views.LoginView):
    """The login page: a locked-out address sees why, with status 429."""

    def form_invalid(self, form):
        seconds = getattr(self.request, login_throttle.LOCKED_OUT_ATTRIBUTE, 0)
        if not seconds:
            return super().form_invalid(form)
        response = self.render_to_response(self.get_context_data(form=form, locked_out_message=locked_out_message(seconds)))
        response.status_code = 429
        response["Retry-After"] = str(seconds)
        return response
