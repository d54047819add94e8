from django.contrib.auth.middleware import LoginRequiredMiddleware


class LoginRequiredExceptApiMiddleware(LoginRequiredMiddleware):
    """Anonymous users see nothing: every page redirects to login.

    The REST API authenticates itself (session or token) and answers 401/403 as JSON, so it is left
    to Django REST framework's permission classes rather than redirected.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
