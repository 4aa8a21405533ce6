"""index.html: the human page over the published feeds.

One static HTML5 page: autodiscovery links for the Atom feeds, a table of
every feed in every format, the latest posts and the sources. Every piece of
text and every attribute goes through html.escape; entry links are shown only
when they are http(s). No scripts, CSS only inline in <style> (the built-in
server sends a Content-Security-Policy). Links to feeds are relative, so the
page works wherever feeds/ is served.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from urllib.parse import urlsplit

from aggregator.jsonfeed import clean_text, entry_title, utc
from aggregator.types import PublishedEntry, SiteInfo

#: How many posts the page lists.
LATEST_POSTS = 30

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;color:#222}
a{color:#1a5fb4}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;margin-top:2rem}
table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;text-align:left}
ol.posts{padding-left:1.2rem}ol.posts li{margin:.6rem 0}.meta{color:#666;font-size:.9em}
footer{margin-top:3rem;color:#666;font-size:.85em}
""".strip()


def _text(value: str | None) -> str:
    return escape(clean_text(value), quote=True)


#: An http(s) URL of printable ASCII without quotes, "&", "<", ">", brackets
#: or a backslash: one that clean_text, strip and urlsplit all leave as it is.
#: The page lists every source, and at 10,000 sources going through
#: urlsplit twice for each took a tenth of a second of every publish.
_PLAIN_WEB_URL = re.compile(r"(?i:https?)://[!#-%'-;=?-Z^-~]*")


def _web_url(url: str | None) -> str | None:
    """``url`` if it is http(s) (never javascript: and the like), else None."""
    if not url:
        return None
    if _PLAIN_WEB_URL.fullmatch(url):
        return url
    url = clean_text(url).strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def _feeds(site: SiteInfo) -> list[tuple[str, str]]:
    """(label, path stem) of every published feed, in page order."""
    feeds = [("All posts", "all"), ("All comments", "comments")]
    feeds += [(f"Topic: {clean_text(topic.title)}", f"topics/{topic.slug}")
              for topic in site.topics if _SLUG.fullmatch(topic.slug)]
    feeds += [(f"Language: {code}", f"lang/{code}")
              for code in site.languages if _LANGUAGE.fullmatch(code)]
    return feeds


def render_index(site: SiteInfo, latest: Sequence[PublishedEntry]) -> bytes:
    """The index page: feeds, the ``latest`` posts (in the given order) and the sources."""
    site_title = _text(site.title)
    feeds = _feeds(site)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{site_title}</title>",
        f'<meta name="generator" content="aggregator {_text(site.generator_version)}">',
    ]
    lines += [
        f'<link rel="alternate" type="application/atom+xml" title="{_text(label)}" '
        f'href="{_text(stem)}.atom">'
        for label, stem in feeds
    ]
    lines += [
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{site_title}</h1>",
        "<p>Posts and comments from marketing blogs, merged and sorted into topics. "
        "Subscribe to any feed below in your feed reader.</p></header>",
        "<main>",
        '<section id="feeds"><h2>Feeds</h2>',
        "<table><thead><tr><th>Feed</th><th>Atom</th><th>RSS</th><th>JSON</th></tr></thead>",
        "<tbody>",
    ]
    lines += [
        f"<tr><td>{_text(label)}</td>"
        + "".join(f'<td><a href="{_text(stem)}.{suffix}">{suffix}</a></td>'
                  for suffix in ("atom", "rss", "json"))
        + "</tr>"
        for label, stem in feeds
    ]
    lines += ["</tbody></table>", "</section>", '<section id="latest"><h2>Latest posts</h2>']
    if latest:
        lines.append('<ol class="posts">')
        lines += [_post(site, entry) for entry in latest]
        lines.append("</ol>")
    else:
        lines.append("<p>No posts yet.</p>")
    lines += ["</section>", '<section id="sources"><h2>Sources</h2>',
              '<p><a href="sources.opml">All sources as OPML</a></p>', "<ul>"]
    lines += [_source_item(source.title or source.name, source.site_url, source.feed_url,
                           source.language)
              for source in site.sources if source.enabled]
    lines += [
        "</ul>",
        "</section>",
        "</main>",
        f"<footer>Published by aggregator {_text(site.generator_version)}.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def _post(site: SiteInfo, entry: PublishedEntry) -> str:
    title = escape(entry_title(entry))
    link = _web_url(entry.link)
    language = (f' lang="{_text(entry.language)}"'
                if entry.language and _LANGUAGE.fullmatch(entry.language) else "")
    heading = f'<a href="{escape(link, quote=True)}">{title}</a>' if link else title
    published = utc(entry.published)
    meta = [
        _text(entry.source.title or entry.source.name),
        f'<time datetime="{published.isoformat()}">{published:%Y-%m-%d %H:%M} UTC</time>',
    ]
    if entry.language:
        meta.append(_text(entry.language))
    topic_titles = {topic.slug: topic.title for topic in site.topics}
    topics = [
        f'<a href="topics/{_text(slug)}.atom">{_text(topic_titles.get(slug, slug))}</a>'
        for slug in entry.topics if _SLUG.fullmatch(slug)
    ]
    if topics:
        meta.append(", ".join(topics))
    if entry.comment_count:
        noun = "comment" if entry.comment_count == 1 else "comments"
        meta.append(f"{entry.comment_count} {noun}")
    return (f"<li><strong{language}>{heading}</strong>"
            f'<br><span class="meta">{" · ".join(meta)}</span></li>')


def _source_item(title: str, site_url: str | None, feed_url: str, language: str | None) -> str:
    home = _web_url(site_url)
    name = f'<a href="{escape(home, quote=True)}">{_text(title)}</a>' if home else _text(title)
    feed = _web_url(feed_url)
    parts = [name]
    if feed:
        parts.append(f'(<a href="{escape(feed, quote=True)}">feed</a>)')
    if language:
        parts.append(f'<span class="meta">{_text(language)}</span>')
    return f"<li>{' '.join(parts)}</li>"
