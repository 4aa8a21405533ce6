"""Making feed markup safe: HTML to an allowlist, text to plain text, URLs to http(s).

Everything a feed hands us is hostile until it passed through here. HTML goes
through nh3 (the Rust ammonia sanitizer) with a strict allowlist, once, at
normalize time; feedparser's own sanitizer is off because it is slow. Every
function here is pure and must never raise on any input text, since one bad
entry may not stop a batch.

The output has to be embeddable in XML (Atom, RSS) as well as in HTML, so
characters XML 1.0 forbids (C0 controls, lone surrogates, U+FFFE/U+FFFF) are
removed, and C1 controls with them since no real text uses them.
"""

from __future__ import annotations

import html as html_module
import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import nh3

from aggregator import speedups
from aggregator.urls import fast_urljoin

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "DROPPED_WITH_CONTENT",
    "TITLE_MAX_LENGTH",
    "clean_text",
    "html_to_text",
    "safe_url",
    "sanitize_html",
    "sanitized_html_to_text",
    "strip_control_chars",
    "truncate",
]

TITLE_MAX_LENGTH = 1000

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "a", "em", "strong", "b", "i", "u", "s", "blockquote", "q",
        "cite", "code", "pre", "ul", "ol", "li", "dl", "dt", "dd",
        "h1", "h2", "h3", "h4", "h5", "h6", "img", "figure", "figcaption",
        "table", "thead", "tbody", "tr", "th", "td", "caption", "hr", "sub", "sup",
        # acronym is only here so that its title survives like abbr's does.
        "abbr", "acronym", "span", "div", "small", "del", "ins",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "abbr": frozenset({"title"}),
    "acronym": frozenset({"title"}),
    "td": frozenset({"colspan", "rowspan"}),
    "th": frozenset({"colspan", "rowspan"}),
}

#: Elements whose content is code, widgets or fallback markup rather than
#: article text: removing only the tag would leave script source or form
#: labels in the post. noscript is here because the parser sees its content
#: as raw text, which would show up as escaped "<img …>" junk.
DROPPED_WITH_CONTENT: frozenset[str] = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "applet", "form", "input",
        "button", "textarea", "select", "option", "datalist", "svg", "math",
        "noscript", "template", "frame", "frameset", "noframes", "noembed",
        "title", "head",
    }
)  # fmt: skip

#: For plain text of titles and names: only code is dropped; any other tag is
#: stripped and its text kept (a title "Why <title> matters" keeps "matters").
_TEXT_DROPPED_WITH_CONTENT: frozenset[str] = frozenset({"script", "style"})

_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "nofollow noopener noreferrer"

#: Not allowed in XML 1.0 (C0 except tab/LF/CR, surrogates, U+FFFE/U+FFFF),
#: plus DEL and C1 controls, which only ever come from encoding damage.
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

#: A numeric character reference that may decode to one of _CONTROL_CHARS:
#: decimal below 100 or 120–159, 55000–57999 (surrogates), 65534/65535; hex
#: up to FF, D800–DFFF, FFFE/FFFF. Wider than needed, never narrower.
_FORBIDDEN_REFERENCE = re.compile(
    r"&#(?:[xX]0*(?:[0-9a-fA-F]{1,2}|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF])"
    r"(?![0-9a-fA-F])|0*(?:[0-9]{1,2}|1[2-5][0-9]|5[5-7][0-9]{3}|6553[45])(?![0-9]))")

#: Block-level tags, to keep "<p>a</p><p>b</p>" from becoming "ab" in text.
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:address|article|aside|blockquote|br|caption|dd|div|dl|dt|figcaption|figure"
    r"|footer|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead"
    r"|tr|ul)[\s/>])",
    re.IGNORECASE,
)

#: What a browser's URL parser ignores: leading and trailing C0 controls and
#: spaces, and tabs and newlines anywhere, so "java\nscript:" is "javascript:".
_URL_EDGES = "".join(map(chr, range(0x21)))
_URL_TAB_NEWLINE = re.compile("[\t\n\r]")

_SAFE_SCHEMES = frozenset({"http", "https"})
#: A host name or IP literal without spaces, escapes or delimiters.
_HOST = re.compile(r"[^\s/\\?#@<>\"'`{}|^%]+")


def _python_strip_control_chars(value: str) -> str:
    return _CONTROL_CHARS.sub("", value)


def strip_control_chars(value: str) -> str:
    """Remove characters that XML 1.0 forbids, C1 controls and lone surrogates."""
    return _strip(value)


# The same characters removed in compiled code, when it was built: the regex
# tested every character of every document's markup against its class.
_strip: Callable[[str], str] = speedups.strip_controls or _python_strip_control_chars


def _xml_safe_markup(markup: str) -> str:
    # html5ever writes U+00A0 as "&nbsp;", an entity XML does not know; and a
    # literal "]]>" would end a CDATA section an output writer might use.
    if "&nbsp;" in markup:
        markup = markup.replace("&nbsp;", "&#160;")
    if "]]>" in markup:
        markup = markup.replace("]]>", "]]&gt;")
    return markup


def _content_cleaner(url_relative: nh3.UrlRelative) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        link_rel=_LINK_REL,
        url_schemes=_URL_SCHEMES,
        url_relative=url_relative,
        strip_comments=True,
    )


_CLEANER_WITHOUT_BASE = _content_cleaner("deny")
_TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags=DROPPED_WITH_CONTENT)
_TITLE_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags=_TEXT_DROPPED_WITH_CONTENT)


@lru_cache(maxsize=32)
def _cleaner_for_base(base_url: str) -> nh3.Cleaner:
    # A Cleaner costs microseconds. Bases are a feed document's URL or an
    # xml:base in it, so a document's entries share one or a few; a longer
    # cache would only hold cleaners of about 10 KB each.
    return _content_cleaner(("rewrite_with_base", base_url))


def sanitize_html(html: str, base_url: str | None = None) -> str:
    """Return *html* reduced to the allowlist, safe to publish and to embed in XML.

    Relative URLs are resolved against *base_url* (only when that is itself an
    http(s) URL); without a usable base they are dropped, since a relative link
    means nothing once the entry is republished elsewhere.
    """
    if not html:
        return ""
    base = _safe_base(base_url) if base_url else None
    try:
        cleaner = _cleaner_for_base(base) if base else _CLEANER_WITHOUT_BASE
    except ValueError:
        # A base that Python's URL parser takes and the Rust one refuses (an
        # invalid IDN such as "xn--"): lose the relative links, not the entry.
        cleaner = _CLEANER_WITHOUT_BASE
    html = strip_control_chars(html)
    cleaned = cleaner.clean(html)
    # Character references such as "&#1;" decode to controls inside the
    # parser (no named one does). Looked for first: the search skips along
    # from "&#" to "&#", the strip reads every character.
    if _FORBIDDEN_REFERENCE.search(html):
        cleaned = strip_control_chars(cleaned)
    return _xml_safe_markup(cleaned)


def _collapse(text: str) -> str:
    return " ".join(strip_control_chars(text).split())


def html_to_text(html: str) -> str:
    """Return the plain text of *html*: no tags, entities decoded, whitespace collapsed.

    Block elements are separated by a space; script, style, forms and the like
    are dropped with their content.
    """
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _collapse(html)
    spaced = _BLOCK_TAG.sub(" <", strip_control_chars(html))
    return _collapse(html_module.unescape(_TEXT_CLEANER.clean(spaced)))


#: A tag of sanitize_html's output, whose attribute values have "<" and ">"
#: escaped, so the first ">" ends the tag.
_SANITIZED_TAG = re.compile(r"<[^>]*>")
_compiled_text = speedups.sanitized_text


def sanitized_html_to_text(html: str) -> str:
    """Like html_to_text, faster, for the output of sanitize_html only.

    Sanitized markup has no script or style left, no comments, and ">" is
    escaped inside attribute values, so stripping tags needs no parser.
    """
    if not html:
        return ""
    if _compiled_text is not None:
        # One pass in C, where the Python below took about 40 µs a post; None
        # for input only the Python answers.
        text = _compiled_text(html)
        if text is not None:
            return text
    return _python_sanitized_html_to_text(html)


def _python_sanitized_html_to_text(html: str) -> str:
    text = _SANITIZED_TAG.sub("", _BLOCK_TAG.sub(" <", html))
    # No controls to strip: sanitize_html removed them, and the only
    # references it writes are &amp; &lt; &gt; &quot; and &#160;.
    return " ".join((html_module.unescape(text) if "&" in text else text).split())


def clean_text(value: str | None, max_length: int = TITLE_MAX_LENGTH) -> str:
    """Return *value* (a title, an author, a category) as one line of plain text.

    Entities are decoded, every tag is removed (the text inside stays, except
    script and style), controls go, whitespace collapses, and the result is
    cut to *max_length* characters, ending in "…" when cut.
    """
    if not value:
        return ""
    if "<" in value or "&" in value:
        value = html_module.unescape(_TITLE_CLEANER.clean(strip_control_chars(value)))
    text = _collapse(value)
    if len(text) <= max_length:
        return text
    return truncate(text, max_length)


def truncate(text: str, max_length: int) -> str:
    """Cut *text* to at most *max_length* characters ending in "…", at a word if one is near."""
    if len(text) <= max_length:
        return text
    if max_length <= 1:
        return "…"[:max_length]
    cut = text[: max_length - 1]
    space = cut.rfind(" ")
    # Break at a word only when that loses little; a long run without spaces
    # (a URL, CJK text) is cut where it stands.
    if space > (max_length - 1) * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


@lru_cache(maxsize=256)
def _safe_base(base_url: str) -> str | None:
    # An entry's links and markup are resolved against its feed's URL (or an
    # xml:base), the same for every entry of a document: checked once, not
    # once per link.
    return safe_url(base_url)


def safe_url(
    url: str | None, base_url: str | None = None, *, allow_mailto: bool = False
) -> str | None:
    """Return *url* made absolute, if it is http(s) (or mailto when allowed), else None.

    Surrounding whitespace and controls go, and tabs and newlines anywhere (a
    browser ignores them, so "java\\tscript:" is javascript:); inner spaces
    become %20. A relative URL is resolved against *base_url*, and anything
    that is not http/https with a host is refused: javascript:, data:, file:,
    vbscript: and the rest.
    """
    if not url:
        return None
    cleaned = strip_control_chars(_URL_TAB_NEWLINE.sub("", url.strip(_URL_EDGES).strip()))
    if not cleaned:
        return None
    cleaned = cleaned.replace(" ", "%20")
    try:
        if base_url:
            base = _safe_base(base_url)
            if base:
                cleaned = fast_urljoin(base, cleaned) or urljoin(base, cleaned)
        parts = urlsplit(cleaned)
        scheme = parts.scheme.lower()
        if scheme in _SAFE_SCHEMES:
            if not parts.hostname or not _HOST.fullmatch(parts.hostname):
                return None
            parts.port  # noqa: B018 - raises ValueError on a port like ":99999" or ":x"
        elif not (allow_mailto and scheme == "mailto" and parts.path):
            return None
    except ValueError:
        return None
    return cleaned
