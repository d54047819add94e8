"""Template helpers of the flag pages: the life of a flag (retrieval.flags.flag_life)."""
from django import template

from retrieval.flags import flag_life as _flag_life

register = template.Library()


@register.simple_tag
def flag_life(flag):
    return _flag_life(flag)
