"""Who may do what: every URL pattern of the project, for every role, with GET and POST.

The test walks the URL conf as it is when the suite runs (``django.urls.get_resolver``, recursively), fills the
path parameters with objects created here, and sends a GET and an empty POST as anonymous, reader (signed in, no
role), expert, maintainer and a staff superuser. The level each URL needs comes from the rules below:

* pages and API reads need a signed-in user; anonymous users are sent to the login page (pages) or get 401 (API);
* every POST needs the expert role, unless its name says it is a maintainer action (retrain, promote, rollback,
  training configuration, evaluation requests...);
* the admin site needs a staff account;
* the exceptions are listed, one by one, in ``EXPLICIT_LEVELS`` (public pages, reads done with a POST, pages
  that are stricter than the rule).

A user below the level must be refused: login redirect or 401 when anonymous, 403 or 405 otherwise (the admin
sends everyone without staff status to its login page). A user at or above it must not be refused. So a new
endpoint that forgets its permission check fails here until it gets one (or an explicit, reviewed exception).

Also here: CSRF protection of representative forms and htmx endpoints (``Client(enforce_csrf_checks=True)``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.shortcuts import resolve_url
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from retrieval.models import Flag, QuestionLog
from tests.factories import DomainFactory, EntryFactory, import_batch

pytestmark = pytest.mark.django_db

# Access levels, from the most open to the most closed, and the rank of each role on that scale.
PUBLIC, LOGIN, EXPERT_LEVEL, MAINTAINER_LEVEL, STAFF = range(5)
# Signing out: it redirects to the login page whoever asks, and can harm no one.
ANY_ANSWER = -1
LEVEL_NAMES = {ANY_ANSWER: "any answer", PUBLIC: "public", LOGIN: "signed in", EXPERT_LEVEL: "expert", MAINTAINER_LEVEL: "maintainer", STAFF: "staff"}
ROLE_RANKS = {"anonymous": PUBLIC, "reader": LOGIN, "expert": EXPERT_LEVEL, "maintainer": MAINTAINER_LEVEL, "staff": STAFF}
METHODS = ("GET", "POST")

# POST endpoints reserved to maintainers, recognised by their URL name: retraining, model promotion and rollback,
# the training configuration, evaluation and benchmark requests.
MAINTAINER_ACTION = re.compile(r"promot|rollback|retrain|training-run|run-create|run-cancel|(^|[:-])config($|-)|evaluat|benchmark|leaderboard")
# Pages that are themselves a maintainer's form (confirmation of a promotion or rollback, the training configuration).
MAINTAINER_PAGE = re.compile(r"promot|rollback|(^|[:-])config$")

# The reviewed exceptions to the rules: (URL name, method) -> level.
EXPLICIT_LEVELS: dict[tuple[str, str], int] = {
    # Signing in is public; signing out and choosing the language are for anyone signed in.
    ("login", "GET"): PUBLIC,
    ("login", "POST"): PUBLIC,
    ("logout", "POST"): ANY_ANSWER,
    ("set_language", "POST"): LOGIN,
    ("admin:login", "GET"): PUBLIC,
    ("admin:login", "POST"): PUBLIC,
    # The admin's sign-out sends whoever is not staff back to the admin index, which asks them to sign in.
    ("admin:logout", "GET"): ANY_ANSWER,
    ("admin:logout", "POST"): ANY_ANSWER,
    # Single sign-on (config/oidc.py): starting it and the provider's callback are public (404 when not configured).
    ("oidc_authentication_init", "GET"): PUBLIC,
    ("oidc_authentication_callback", "GET"): PUBLIC,
    # A token is obtained with a user name and password.
    ("api-token", "GET"): PUBLIC,
    ("api-token", "POST"): PUBLIC,
    # The home page only redirects, whatever the method.
    ("home", "POST"): LOGIN,
    # Asking the assistant a question is a read, even though it is sent with POST (and logged).
    ("retrieval:ask", "POST"): LOGIN,
    ("api-answers", "POST"): LOGIN,
    # Pages whose form itself is an expert's tool: readers do not even see it.
    ("glossary:entry-create", "GET"): EXPERT_LEVEL,
    ("glossary:entry-edit", "GET"): EXPERT_LEVEL,
    ("glossary:entry-delete", "GET"): EXPERT_LEVEL,
    ("glossary:import-upload", "GET"): EXPERT_LEVEL,
    ("glossary:import-preview", "GET"): EXPERT_LEVEL,
    # The review workbench is an expert's tool; showing the next item of its queue leases it (a write).
    ("training:workbench", "GET"): EXPERT_LEVEL,
    ("training:workbench-next", "GET"): EXPERT_LEVEL,
    ("review-item-next-item", "GET"): EXPERT_LEVEL,
    # Several experts (training.workbench): overlap settings, agreement and other experts' pages are for
    # maintainers; adjudication for maintainers (and experts of the senior_expert group, tested in
    # tests/training/test_team_review.py); each expert reads their own page.
    ("training:workbench-overlap", "GET"): MAINTAINER_LEVEL,
    ("training:workbench-overlap", "POST"): MAINTAINER_LEVEL,
    ("training:workbench-adjudication", "GET"): MAINTAINER_LEVEL,
    ("training:workbench-adjudication", "POST"): MAINTAINER_LEVEL,
    ("training:workbench-adjudicate", "POST"): MAINTAINER_LEVEL,
    ("training:workbench-agreement", "GET"): MAINTAINER_LEVEL,
    ("training:workbench-agreement", "POST"): MAINTAINER_LEVEL,
    ("training:workbench-experts", "GET"): MAINTAINER_LEVEL,
    ("training:workbench-experts", "POST"): MAINTAINER_LEVEL,
    ("training:workbench-expert", "GET"): MAINTAINER_LEVEL,
    ("training:workbench-expert", "POST"): MAINTAINER_LEVEL,
    ("training:workbench-me", "GET"): EXPERT_LEVEL,
    # Annotation guides: anyone signed in reads them, maintainers write them.
    ("training:guideline-create", "GET"): MAINTAINER_LEVEL,
    ("training:guideline-create", "POST"): MAINTAINER_LEVEL,
    ("training:guideline-edit", "GET"): MAINTAINER_LEVEL,
    ("training:guideline-edit", "POST"): MAINTAINER_LEVEL,
    # Background jobs of every kind (workers, errors): a maintainer's page.
    ("jobs:job-list", "GET"): MAINTAINER_LEVEL,
    # A version's merged weights as a zip: maintainers only.
    ("evaluation:version-export", "GET"): MAINTAINER_LEVEL,
}

# Which object fills a path parameter: by (URL name prefix, parameter), then by parameter name alone.
# A parameter nobody knows gets an id that matches nothing: permission checks must still come first.
OBJECT_BY_URL_AND_PARAMETER: list[tuple[str, str, str]] = [
    ("glossary:entry-", "pk", "entry"),
    ("glossary:import-", "pk", "import_batch"),
    ("api-domain-", "pk", "domain"),
    ("api-entry-", "pk", "entry"),
    ("api-import-", "pk", "import_batch"),
    ("api-flag-", "pk", "flag"),
    ("training-run-", "pk", "training_run"),
    ("negative-candidate-", "pk", "candidate"),
    ("model-version", "pk", "version"),
    ("evaluation", "pk", "evaluation"),
    ("review-item-", "pk", "review_item"),
    ("review-decision-", "pk", "review_decision"),
    ("evaluation:", "run_id", "evaluation"),
    ("evaluation:", "version_id", "version"),
]
OBJECT_BY_PARAMETER = {
    "question_id": "question",
    "flag_id": "flag",
    "run_id": "training_run",
    "snapshot_id": "snapshot",
    "candidate_id": "candidate",
    "entry_id": "entry",
    "version_id": "version",
    "evaluation_id": "evaluation",
    "leaderboard_id": "leaderboard",
    "item_id": "review_item",
    "decision_id": "review_decision",
    "guideline_id": "guideline",
}
MISSING_OBJECT_ID = "987654"
# Unnamed patterns cannot be reversed: one example path each.
EXAMPLE_PATHS = {"admin/(?P<url>.*)$": "/admin/no-such-page/"}


@dataclass(frozen=True)
class Route:
    route: str
    name: str | None
    parameters: tuple[str, ...]
    positional: int

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    def __str__(self) -> str:
        return self.name or self.route


def _parameters(pattern) -> tuple[list[str], int]:
    regex = pattern.regex
    named = list(regex.groupindex)
    return named, 0 if named else regex.groups


def walk_urls(resolver: URLResolver | None = None, prefix: str = "", namespace: str | None = None,
              named: tuple[str, ...] = (), positional: int = 0) -> list[Route]:
    """Every URL pattern of the URL conf, with its namespaced name and path parameters."""
    resolver = resolver or get_resolver()
    routes = []
    for pattern in resolver.url_patterns:
        names, count = _parameters(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else (pattern.namespace or namespace)
            routes += walk_urls(pattern, prefix + str(pattern.pattern), inner, named + tuple(names), positional + count)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            routes.append(Route(prefix + str(pattern.pattern), name, named + tuple(names), positional + count))
    return routes


ROUTES = walk_urls()


def required_level(route: Route, method: str) -> int:
    if route.name and (route.name, method) in EXPLICIT_LEVELS:
        return EXPLICIT_LEVELS[(route.name, method)]
    if route.is_admin:
        return STAFF
    if method == "GET":
        return MAINTAINER_LEVEL if MAINTAINER_PAGE.search(route.name or "") else LOGIN
    return MAINTAINER_LEVEL if MAINTAINER_ACTION.search(route.name or "") else EXPERT_LEVEL


@pytest.fixture
def objects(expert, maintainer):
    """One object of each kind a URL can name, with ids that differ from one kind to the next."""
    from evaluation.models import EvaluationRun, Leaderboard
    from retrieval.selectors import champion_version_get
    from django.utils import timezone

    from glossary.models import ImportBatch
    from training.models import DataSnapshot, Guideline, NegativeCandidate, ReviewDecision, ReviewItem, TrainingRun
    from jobs.models import Job

    domain = DomainFactory(name="Fiscalité")
    entries = [EntryFactory(domain=domain) for _ in range(3)]
    version = champion_version_get()
    question = QuestionLog.objects.create(question="Qu'est-ce que la TVA ?", version=version, answer_text="Un impôt.")
    flag = Flag.objects.create(question_log=question, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, version=version)
    storages["artifacts"].save("snapshots/matrix.jsonl", ContentFile(b'{"anchor": "TVA", "positive": "Un imp\\u00f4t."}\n'))
    snapshot = DataSnapshot.objects.create(content_hash="f" * 64, total=1, artifact_path="snapshots/matrix.jsonl")
    run = TrainingRun.objects.create(
        job=Job.objects.create(kind="training", status="succeeded", requested_by=maintainer, started_at=timezone.now(), finished_at=timezone.now()),
        snapshot=snapshot,
    )
    candidate = NegativeCandidate.objects.create(
        anchor="TERME0", anchor_entry=entries[0], negative_entry=entries[1], negative_text="autre", score=0.9,
        positive_score=0.8, reason="score proche", run=run,
    )
    review_item = ReviewItem.objects.create(key=f"flag:{flag.pk}", source=ReviewItem.Source.FLAG, flag=flag, question_log=question)
    decided_item = ReviewItem.objects.create(key="draft:matrix", source=ReviewItem.Source.DRAFT, entry=entries[1], status=ReviewItem.Status.DONE)
    return {
        "domain": domain,
        "entry": entries[2],
        "import_batch": import_batch(file_name="g.csv", file_format="csv", status=ImportBatch.Status.IMPORTED),
        "version": version,
        "question": question,
        "flag": flag,
        "snapshot": snapshot,
        "training_run": run,
        "candidate": candidate,
        "evaluation": EvaluationRun.objects.create(version=version, job=Job.objects.create(kind="evaluation", status="failed", error="modèle introuvable")),
        "leaderboard": Leaderboard.objects.create(job=Job.objects.create(kind="leaderboard", status="succeeded")),
        "review_item": review_item,
        "review_decision": ReviewDecision.objects.create(item=decided_item, user=expert, decision=ReviewDecision.Decision.SKIP),
        "guideline": Guideline.objects.create(domain=domain, source=ReviewItem.Source.FLAG, title="Signalements", body="*Lire* la question."),
    }


def _admin_object_id(route: Route) -> str:
    """The pk of an existing object of the model an admin URL is about ("admin:glossary_entry_change")."""
    for model in admin.site._registry:
        if (route.name or "").startswith(f"admin:{model._meta.app_label}_{model._meta.model_name}_") or (
            route.route.startswith(f"admin/{model._meta.app_label}/{model._meta.model_name}/")
        ):
            obj = model._default_manager.order_by("pk").first()
            return str(obj.pk) if obj else MISSING_OBJECT_ID
    return MISSING_OBJECT_ID


def _parameter_value(route: Route, parameter: str, objects: dict) -> str:
    if route.is_admin:
        if parameter == "app_label":
            return "glossary"
        if parameter == "content_type_id":
            from django.contrib.contenttypes.models import ContentType

            return str(ContentType.objects.get_for_model(type(objects["entry"])).pk)
        return _admin_object_id(route)
    for prefix, name, key in OBJECT_BY_URL_AND_PARAMETER:
        if parameter == name and (route.name or "").startswith(prefix):
            return str(objects[key].pk)
    if parameter in OBJECT_BY_PARAMETER:
        return str(objects[OBJECT_BY_PARAMETER[parameter]].pk)
    return MISSING_OBJECT_ID


ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def url_of(route: Route, objects: dict) -> str:
    if route.name is None:
        if route.route in EXAMPLE_PATHS:
            return EXAMPLE_PATHS[route.route]
        assert not any(char in route.route for char in "^$()?"), f"Unnamed URL pattern {route.route!r}: give it a name or an example path."
        # A plain route ("admin/glossary/entry/<path:object_id>/", the admin's redirect to the change page).
        return "/" + ROUTE_PARAMETER.sub(lambda match: _parameter_value(route, match.group(1), objects), route.route)
    if route.positional:
        # Positional groups (django-simple-history's admin page): the object, then the history record.
        history = type(objects["entry"]).history.filter(id=objects["entry"].pk).first()
        values = [str(objects["entry"].pk), str(history.history_id)][: route.positional]
        if route.name.startswith("admin:glossary_domain_"):
            values[0] = str(objects["domain"].pk)
            history = type(objects["domain"]).history.filter(id=objects["domain"].pk).first()
            values[1:] = [str(history.history_id)][: route.positional - 1]
        return reverse(route.name, args=values)
    return reverse(route.name, kwargs={parameter: _parameter_value(route, parameter, objects) for parameter in route.parameters})


def outcome(response) -> str:
    """What the response means for access: "login" (sent to sign in), "forbidden", "not_allowed" or "ok"."""
    if response.status_code == 401:
        return "login"
    if response.status_code in (301, 302, 303, 307, 308):
        location = response["Location"]
        login_pages = (resolve_url(settings.LOGIN_URL), reverse("admin:login"))
        return "login" if any(location.startswith(page) for page in login_pages) else "ok"
    return {403: "forbidden", 405: "not_allowed"}.get(response.status_code, "ok")


def acceptable(route: Route, role: str, level: int, result: str, *, method_exists: bool) -> bool:
    if level == ANY_ANSWER:
        return True
    if not method_exists:
        # The URL does not take this method at all: a refusal of any kind is right, before or after the role check.
        return result in ("login", "forbidden", "not_allowed")
    if ROLE_RANKS[role] >= level:
        # The admin refuses staff what a model's admin does not allow (e.g. adding a model version by hand).
        return result in ("ok", "not_allowed", "forbidden") if route.is_admin else result in ("ok", "not_allowed")
    if role == "anonymous" or route.is_admin:
        return result == "login"
    return result in ("forbidden", "not_allowed")


@pytest.fixture
def users(reader, expert, maintainer):
    staff = get_user_model().objects.create_superuser(username="staff", password="pw-staff", email="staff@example.org")
    return {"anonymous": None, "reader": reader, "expert": expert, "maintainer": maintainer, "staff": staff}


def _request(user, method: str, url: str):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(url) if method == "GET" else client.post(url, {})


def test_the_walk_finds_every_part_of_the_project():
    names = {route.name for route in ROUTES}
    assert {"login", "glossary:entry-edit", "api-entry-detail", "retrieval:flag-create", "api-search",
            "training:run-create", "training-run-list", "admin:glossary_entry_change"} <= names
    assert any(route.parameters for route in ROUTES) and any(route.positional for route in ROUTES)


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_access_matrix(route, objects, users):
    url = url_of(route, objects)
    wrong = []
    for method in METHODS:
        level = required_level(route, method)
        responses = {role: _request(user, method, url) for role, user in users.items()}
        # What the most privileged user gets tells whether the URL takes this method at all.
        method_exists = outcome(responses["staff"]) != "not_allowed"
        for role, response in responses.items():
            result = outcome(response)
            if not acceptable(route, role, level, result, method_exists=method_exists):
                wrong.append(f"{method} {url} as {role}: {response.status_code} ({result}), needs {LEVEL_NAMES[level]}")
    assert not wrong, "\n".join(wrong)


# ---- CSRF ----------------------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(expert, maintainer):
    """A maintainer's browser session that, like a real browser, must send the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(maintainer)
    return client


def _csrf_cases(objects) -> list[tuple[str, dict, dict]]:
    entry, question, flag, candidate = objects["entry"], objects["question"], objects["flag"], objects["candidate"]
    htmx = {"HTTP_HX_REQUEST": "true"}
    return [
        (reverse("glossary:entry-create"), {"term": "CSRF", "definition": "Une attaque", "kind": "acronym", "status": "draft"}, {}),
        (reverse("glossary:entry-edit", args=[entry.pk]), {"term": "X", "definition": "Y", "revision": entry.revision}, {}),
        (reverse("glossary:entry-status", args=[entry.pk]), {"status": "rejected"}, htmx),
        (reverse("glossary:entry-delete", args=[entry.pk]), {}, {}),
        (reverse("retrieval:ask"), {"question": "TVA"}, htmx),
        (reverse("retrieval:flag-create", args=[question.pk]), {"reason": "wrong_entry"}, htmx),
        (reverse("retrieval:flag-status", args=[flag.pk]), {"status": "dismissed"}, htmx),
        (reverse("training:run-create"), {}, {}),
        (reverse("training:config"), {}, {}),
        (reverse("training:screening-decide", args=[candidate.pk]), {"decision": "different"}, htmx),
        (reverse("logout"), {}, {}),
    ]


def test_posts_without_csrf_token_are_refused(csrf_client, objects):
    from glossary.models import Entry

    before = list(Entry.objects.order_by("pk").values_list("pk", "status", "revision"))
    refused = [url for url, data, headers in _csrf_cases(objects) if csrf_client.post(url, data, **headers).status_code == 403]
    assert refused == [url for url, _data, _headers in _csrf_cases(objects)]
    assert list(Entry.objects.order_by("pk").values_list("pk", "status", "revision")) == before
    assert objects["flag"].__class__.objects.get(pk=objects["flag"].pk).status == Flag.Status.OPEN


def test_the_same_post_with_the_token_of_the_page_goes_through(csrf_client, objects):
    entry = objects["entry"]
    page = csrf_client.get(reverse("glossary:entry-detail", args=[entry.pk]))
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else csrf_client.cookies["csrftoken"].value
    response = csrf_client.post(
        reverse("glossary:entry-status", args=[entry.pk]), {"status": "rejected"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.status == "rejected"


def test_every_page_form_carries_a_csrf_token(expert_client, objects):
    """Each POST form of the main pages has its hidden token (htmx sends it from the <body> header)."""
    urls = [
        reverse("glossary:entry-list"), reverse("glossary:entry-create"), reverse("glossary:entry-edit", args=[objects["entry"].pk]),
        reverse("glossary:entry-detail", args=[objects["entry"].pk]), reverse("glossary:import-upload"),
        reverse("retrieval:ask"), reverse("retrieval:question-detail", args=[objects["question"].pk]),
        reverse("retrieval:flag-list"), reverse("training:run-list"), reverse("training:screening"),
    ]
    for url in urls:
        html = expert_client.get(url).content.decode()
        forms = re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.S | re.I)
        post_forms = [form for form in forms if re.search(r"method=[\"']?post", form, flags=re.I)]
        missing = [form[:120] for form in post_forms if "csrfmiddlewaretoken" not in form]
        assert not missing, f"{url}: POST form(s) without a CSRF token: {missing}"
        assert 'hx-headers=\'{"X-CSRFToken"' in html, f"{url}: htmx requests would be sent without the CSRF header"


def test_api_with_a_session_needs_the_csrf_token_but_a_token_header_does_not(objects, expert):
    from rest_framework.authtoken.models import Token

    client = Client(enforce_csrf_checks=True)
    client.force_login(expert)
    url = reverse("api-entry-validate-entry", args=[objects["entry"].pk])
    refused = client.post(url)
    assert refused.status_code == 403 and "CSRF" in refused.json()["reason"]
    token = Token.objects.create(user=expert)
    assert Client(enforce_csrf_checks=True).post(url, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
