"""The API docs pages (Swagger UI, Redoc) work offline: every script, style and icon they load is one of our static
files (drf-spectacular-sidecar), and those files exist."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


class _Resources(HTMLParser):
    """The URLs a page makes the browser load: script src, link href, img src."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("script", "img") and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])


def _resources(html: str) -> list[str]:
    parser = _Resources()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("url_name,bundle", [("swagger-ui", "swagger-ui-bundle.js"), ("redoc", "redoc.standalone.js")])
def test_the_docs_pages_load_only_local_static_files_that_exist(expert_client, url_name, bundle):
    response = expert_client.get(reverse(url_name))
    assert response.status_code == 200
    html = response.content.decode()

    urls = _resources(html)
    assert any(url.endswith(bundle) for url in urls), urls
    static_prefix = "/" + settings.STATIC_URL.lstrip("/")
    for url in urls:
        assert url.startswith(static_prefix), f"{url} is not one of our static files"
        path = url[len(static_prefix):].split("?")[0]
        assert finders.find(path), f"{url}: no such static file"
    # No other host is named anywhere in the page (CDN, web fonts, Swagger's online validator).
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, flags=re.I), re.findall(r"(?:https?:)?//[^\s\"']+", html)
    # The schema the page reads is ours.
    assert reverse("schema") in html


def test_swagger_ui_does_not_call_the_online_validator(expert_client):
    html = expert_client.get(reverse("swagger-ui")).content.decode()
    assert '"validatorUrl": null' in html
