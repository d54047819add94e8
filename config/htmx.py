"""htmx in the server-rendered views: whether a request swaps part of a page, and the response that serves either."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def is_fragment_request(request: HttpRequest) -> bool:
    """An htmx request that swaps part of the page (a boosted link or a history restore needs the whole page)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def render_full_or_fragment(request: HttpRequest, *, page: str, fragment: str, context: dict, status: int = 200) -> HttpResponse:
    """The fragment to an htmx swap, the whole page otherwise; caches keep the two apart (Vary: HX-Request)."""
    response = render(request, fragment if is_fragment_request(request) else page, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response
