"""Markdown written by people (model cards, MLflow descriptions, postmortems) turned into safe HTML.

Rendered with python-markdown, then cleaned by nh3 against an allowlist: no scripts, no event
handlers, no htmx attributes, links only to http(s) and mailto.
"""

from __future__ import annotations

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}
MAX_SOURCE_CHARS = 200_000


def render_markdown(source: str) -> str:
    """Sanitised HTML for a Markdown text; safe to mark as safe in a template."""
    html = markdown_lib.markdown(
        source[:MAX_SOURCE_CHARS], extensions=["extra", "sane_lists"], output_format="html"
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
