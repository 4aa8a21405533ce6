"""OPML 2.0 (http://opml.org/spec2.opml): sources.opml out, subscription lists in.

Written with xml.etree, which escapes every attribute; text is first cleaned
of characters XML cannot carry at all. Read with lxml, entities and DTDs
off, since an imported file comes from anywhere.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from lxml import etree

from aggregator.errors import ParseError
from aggregator.jsonfeed import clean_text, utc, web_uri
from aggregator.types import SiteInfo, SourceInfo

OPML_DOCS = "http://opml.org/spec2.opml"

_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_pis=True
)


@dataclass(frozen=True, slots=True)
class OpmlOutline:
    """One feed listed in an OPML file."""

    #: The feed URL (xmlUrl), as written.
    url: str
    #: The outline's title (or text), or "".
    title: str
    #: The site's home page (htmlUrl), or None.
    site_url: str | None = None
    #: The language attribute, or None.
    language: str | None = None


def render_opml(
    site: SiteInfo, *, include_disabled: bool = False, date_created: datetime | None = None
) -> bytes:
    """An OPML 2.0 document listing the sources of ``site``, one flat outline each.

    dateCreated is written only when given: ``site.updated`` is the time of
    the run, and a date that changes every run would rewrite an unchanged
    source list. Disabled sources are left out unless ``include_disabled``
    (for exports), and are then marked ``isComment="true"``.
    """
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = clean_text(f"{site.title}: sources")
    if date_created is not None:
        # OPML dates are RFC 822.
        ET.SubElement(head, "dateCreated").text = format_datetime(utc(date_created), usegmt=True)
    ET.SubElement(head, "ownerName").text = clean_text(site.title)
    ET.SubElement(head, "docs").text = OPML_DOCS
    body = ET.SubElement(root, "body")
    for source in site.sources:
        if source.enabled or include_disabled:
            body.append(_outline(source))
    if not len(body):
        # OPML 2.0: <body> holds one or more outlines (the W3C validator
        # reports an empty one as an error). Text only: no feed to import.
        ET.SubElement(body, "outline", text="No sources yet")
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _outline(source: SourceInfo) -> ET.Element:
    title = clean_text(source.title) or clean_text(source.name)
    outline = ET.Element("outline", type="rss", text=title, title=title,
                         xmlUrl=clean_text(source.feed_url))
    if source.site_url:
        # htmlUrl must be a URL; xmlUrl stays as configured so that an
        # export imports back to the very same source.
        outline.set("htmlUrl", web_uri(source.site_url))
    if source.language:
        outline.set("language", clean_text(source.language))
    if source.topics:
        # OPML 2.0 categories: comma-separated, slash-delimited paths.
        outline.set("category", ",".join(f"/{clean_text(topic)}" for topic in source.topics))
    if not source.enabled:
        outline.set("isComment", "true")
    return outline


def read_opml(data: bytes) -> tuple[OpmlOutline, ...]:
    """Every outline with an xmlUrl in an OPML document, nested ones included, in order.

    Raises ParseError when ``data`` is not an OPML document.
    """
    try:
        root = etree.fromstring(data, _SAFE_PARSER)
    except etree.XMLSyntaxError as error:
        raise ParseError(f"not an OPML file (XML error: {error}); export it again") from error
    if not isinstance(root.tag, str) or etree.QName(root).localname != "opml":
        raise ParseError("not an OPML file: the root element is not <opml>")
    outlines = []
    seen: set[str] = set()
    for outline in root.iter("{*}outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = (outline.get("title") or outline.get("text") or "").strip()
        outlines.append(OpmlOutline(
            url=url,
            title=clean_text(title),
            site_url=(outline.get("htmlUrl") or "").strip() or None,
            language=(outline.get("language") or "").strip() or None,
        ))
    return tuple(outlines)
