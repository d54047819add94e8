"""Annotation guidelines: which guide applies to a review item, their history, and safe markdown rendering.

Guides are markdown written by maintainers. Rendering goes markdown -> HTML (Python-Markdown) -> sanitised HTML
(nh3, an allow-list of tags and attributes, http/https/mailto links only): raw HTML typed into a guide, scripts and
event handlers never reach a page.
"""
from __future__ import annotations

import difflib

import markdown
import nh3
from django.db.models import Q, QuerySet
from django.utils.safestring import SafeString, mark_safe

from glossary.models import Domain
from training.models import Guideline

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML that is safe to put in a page whoever wrote ``text``."""
    html = markdown.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    cleaned = nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=ALLOWED_URL_SCHEMES,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
        link_rel="noopener noreferrer",
    )
    return mark_safe(cleaned)  # nh3 output: only the allow-listed markup above


# ---- selectors ----------------------------------------------------------------------------------------------


def guideline_list() -> QuerySet[Guideline]:
    return Guideline.objects.select_related("domain", "updated_by")


def guideline_for(*, domain: Domain | int | None, source: str | None) -> Guideline | None:
    """The guide for an item of ``domain`` from ``source``, the most specific first.

    Order: this domain and this source; any domain, this source; this domain, any source; the general guide.
    The task (how to judge a flag, a duplicate...) comes before the domain, since it is what the expert decides.
    """
    domain_id = domain.pk if isinstance(domain, Domain) else domain
    source = source or ""
    domains = Q(domain__isnull=True) | Q(domain_id=domain_id) if domain_id else Q(domain__isnull=True)
    candidates = list(Guideline.objects.filter(domains, source__in={source, ""}).select_related("domain"))

    def specificity(guideline: Guideline) -> tuple[bool, bool]:
        return (guideline.source == source and source != "", guideline.domain_id is not None)

    return max(candidates, key=specificity, default=None)


def guideline_history(*, guideline: Guideline) -> list[dict]:
    """Every version of a guide, newest first, with what changed from the version before it."""
    records = list(guideline.history.select_related("history_user", "domain").order_by("-history_date", "-history_id"))
    rows = []
    for record, previous in zip(records, records[1:] + [None]):
        changes, body_diff = [], ""
        if previous is not None:
            for change in record.diff_against(previous).changes:
                if change.field == "body":
                    body_diff = "\n".join(difflib.unified_diff(
                        (change.old or "").splitlines(), (change.new or "").splitlines(), lineterm="", n=1,
                    ))
                elif change.field not in ("updated_at", "updated_by"):
                    changes.append({"field": change.field, "old": change.old, "new": change.new})
        rows.append({"record": record, "changes": changes, "body_diff": body_diff})
    return rows


# ---- services -----------------------------------------------------------------------------------------------


def guideline_save(*, guideline: Guideline, user) -> Guideline:
    """Save a new or edited guide (already validated), recording who changed it in its history."""
    guideline.updated_by = user
    # django-simple-history takes the user from the request middleware; this covers calls outside a request too.
    guideline._history_user = user
    guideline.save()
    return guideline
