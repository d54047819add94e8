"""Template helpers for annotation guides: ``{% guideline_for domain=... source=... as guideline %}`` and
``{{ guideline.body|guideline_html }}`` (markdown rendered and sanitised by training.guidelines)."""
from django import template

from training import guidelines

register = template.Library()


@register.simple_tag
def guideline_for(*, domain=None, source=None):
    return guidelines.guideline_for(domain=domain or None, source=source or None)


@register.filter
def guideline_html(text: str):
    return guidelines.render_markdown(text)
