"""Template filters used across apps."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from apps.web.badges import badge_class
from apps.web.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(source: str | None) -> SafeString:
    # Safe because render_markdown runs the output through nh3's allowlist.
    return mark_safe(render_markdown(source or ""))  # noqa: S308


@register.filter
def get_item(mapping: object, key: object) -> object:
    """`{{ mapping|get_item:key }}` for dictionaries keyed by a variable."""
    if not isinstance(mapping, dict):
        return None
    return mapping.get(key)


@register.filter
def markdown_text(source: str | None) -> str:
    """The words of a Markdown text without its markup, for one-line previews."""
    from django.utils.html import strip_tags

    return strip_tags(render_markdown(source or "")).replace("\n", " ").strip()


@register.filter
def metric(value: object) -> object:
    """A metric as people read it: up to six significant digits, no trailing zeros."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return f"{value:.6g}"


@register.filter
def words(value: str) -> str:
    """`alias_promotion` → `Alias promotion`."""
    text = str(value).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def badge(value: object) -> str:
    """`<span class="badge {{ deploy.state|badge }}">`: the tone registered for the value."""
    return badge_class(value)
