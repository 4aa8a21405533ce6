"""sanitize: the allowlist holds against the known traps and against anything hypothesis makes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.sanitize import (
    TITLE_MAX_LENGTH,
    clean_text,
    html_to_text,
    safe_url,
    sanitize_html,
    sanitized_html_to_text,
    strip_control_chars,
)

BASE = "https://blog.example.nl/2005/05/open-source/"

#: Any character XML 1.0 forbids, plus C1 controls.
INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
#: In sanitized output "<" and ">" are escaped everywhere but in tags.
TAG = re.compile(r"<[^>]*>")
URL_ATTRIBUTE = re.compile(r'\s(?:href|src)="([^"]*)"')
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def assert_safe(output: str) -> None:
    assert "]]>" not in output
    assert INVALID_XML.search(output) is None
    lowered = output.lower()
    for dropped in ("<script", "<style", "<form", "<iframe", "<svg", "<math", "<object"):
        assert dropped not in lowered
    for tag in TAG.findall(output):
        assert EVENT_HANDLER.search(tag) is None, tag
        assert " style=" not in tag.lower(), tag
        for url in URL_ATTRIBUTE.findall(tag):
            assert url.startswith(("https://", "http://", "mailto:")), tag
    # Embeddable as text of an XML element: lxml refuses invalid characters.
    element = etree.Element("content")
    element.text = output
    assert (etree.fromstring(etree.tostring(element)).text or "") == output


# --------------------------------------------------------------------------- known traps


@pytest.mark.parametrize(
    "trap",
    [
        '<a href="javascript:alert(1)">klik</a>',
        '<a href="JaVaScRiPt:alert(1)">klik</a>',
        '<a href=" java\tscript:alert(1)">klik</a>',
        '<a href="&#106;avascript:alert(1)">klik</a>',
        '<a href="vbscript:msgbox(1)">klik</a>',
        "<img src=x onerror=alert(1)>",
        '<img src="javascript:alert(1)">',
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
        '<form action="https://evil.example/"><input name="q"><button>Go</button></form>',
        "<svg><script>alert(1)</script></svg>",
        "<svg onload=alert(1)>",
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
        '<img src="data:image/png;base64,iVBORw0KGgo=">',
        "<scr<script>ipt>alert(1)</script>",
        '<p style="background:url(javascript:alert(1))" onclick="x()">tekst</p>',
        "<iframe src=https://evil.example/></iframe>",
        '<object data="https://evil.example/x.swf"></object>',
        "<style>body{display:none}</style>",
        "<![CDATA[ ]]> ]]> <p title=']]>'>x</p>",
        '<a href="https://ok.example/" target="_blank" rel="opener">x</a>',
    ],
)
def test_known_traps_are_defused(trap: str) -> None:
    output = sanitize_html(trap, BASE)
    assert_safe(output)
    # Left-over words may stay as harmless text; in markup nothing of them.
    for tag in TAG.findall(output):
        assert "alert" not in tag
        assert "evil" not in tag


def test_dropped_elements_take_their_content_with_them() -> None:
    html = (
        "<p>voor</p><script>var geheim = 1;</script><style>p{}</style>"
        "<form><textarea>formtekst</textarea><select><option>keuze</option></select>"
        "<button>knop</button></form><svg><text>svgtekst</text></svg>"
        "<math><mi>x</mi></math><iframe>iframetekst</iframe><p>na</p>"
    )
    output = sanitize_html(html, BASE)
    assert output == "<p>voor</p><p>na</p>"


def test_allowed_markup_survives_with_allowed_attributes_only() -> None:
    html = (
        '<h2 id="kop" class="x">Kop</h2><p>Een <strong>sterk</strong> en <em>schuin</em> '
        '<abbr title="Search Engine Optimization">SEO</abbr>-verhaal.</p>'
        '<table><tr><td colspan="2" width="9">cel</td></tr></table>'
        '<img src="https://cdn.example.nl/a.png" alt="plaatje" width="10" height="20" '
        'loading="lazy">'
    )
    output = sanitize_html(html, BASE)
    assert "<h2>Kop</h2>" in output
    assert "<strong>sterk</strong>" in output
    assert '<abbr title="Search Engine Optimization">SEO</abbr>' in output
    assert '<td colspan="2">cel</td>' in output
    assert '<img src="https://cdn.example.nl/a.png" alt="plaatje" width="10" height="20">' in output


def test_links_get_rel_nofollow_noopener_noreferrer() -> None:
    output = sanitize_html('<a href="https://emerce.nl/" rel="author" title="E">Emerce</a>')
    assert output == (
        '<a href="https://emerce.nl/" title="E" rel="nofollow noopener noreferrer">Emerce</a>'
    )


def test_relative_urls_resolve_against_base() -> None:
    html = '<a href="../lees-ook/">lees</a><img src="/img/x.png"><a href="#reacties">r</a>'
    output = sanitize_html(html, BASE)
    assert 'href="https://blog.example.nl/2005/05/lees-ook/"' in output
    assert 'src="https://blog.example.nl/img/x.png"' in output
    assert 'href="https://blog.example.nl/2005/05/open-source/#reacties"' in output


def test_relative_urls_are_dropped_without_a_usable_base() -> None:
    html = '<a href="/lees-ook/">lees</a><img src="x.png" alt="x">'
    for base in (None, "javascript:alert(1)", "not a url"):
        output = sanitize_html(html, base)
        assert "href" not in output
        assert "src" not in output
        assert "lees" in output


def test_mailto_links_stay() -> None:
    assert 'href="mailto:redactie@example.nl"' in sanitize_html(
        '<a href="mailto:redactie@example.nl">mail</a>'
    )


def test_controls_surrogates_and_char_references_to_them_are_removed() -> None:
    html = "<p>a\x00b\x01c\x7f\x85d\ud800e&#1;f&#xFFFE;g\tn\n</p>"
    output = sanitize_html(html)
    assert output == "<p>abcdefg\tn\n</p>"
    assert_safe(output)
    # C1 controls that HTML does not map to windows-1252, and noncharacters.
    assert sanitize_html("<p>&#129;&#x9D;&#65535;x&#8217;</p>") == "<p>x\u2019</p>"


def test_nbsp_is_written_as_an_xml_safe_reference() -> None:
    assert sanitize_html("<p>a&nbsp;b</p>") == "<p>a&#160;b</p>"


def test_empty_input_gives_empty_output() -> None:
    assert sanitize_html("") == ""
    assert sanitize_html("<script>x</script>") == ""


# --------------------------------------------------------------------------- properties

_TOKENS = [
    "<script>", "</script>", "<style>", "<form action=x>", "<svg>", "<math>", "<a href=",
    '"javascript:alert(1)"', "'data:text/html,x'", " onerror=", " onclick=\"x\"", "<img src=",
    "<p>", "</p>", ">", "<", "]]>", "<![CDATA[", "&#0;", "&#x1;", "&nbsp;", "\x00", "\ud800",
    "\x0b", "<!--", "-->", " style=color:red", "<iframe>", "<br/>", "/relative", "&amp;",
    "java\tscript:", "<title>", "</title>", "<noscript>", "<table><td rowspan=2>",
    # references that decode to what XML cannot carry, spelled every way
    "&#129;", "&#x9D", "&#X8f;", "&#65535;", "&#xFFFE", "&#xDFFF;", "&#00031;", "&#x0000b;",
    "&#127", "&#8217;", "&#x2019;", "&#", "&#x;", "&#1",
]  # fmt: skip
html_soup = st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=12)), max_size=40).map(
    "".join
)


@settings(max_examples=400)
@given(html=html_soup, base=st.sampled_from([None, BASE, "javascript:x"]))
def test_sanitized_output_is_always_safe(html: str, base: str | None) -> None:
    assert_safe(sanitize_html(html, base))


@settings(max_examples=200)
@given(html=st.text())
def test_arbitrary_text_never_raises_and_stays_safe(html: str) -> None:
    assert_safe(sanitize_html(html, BASE))
    assert INVALID_XML.search(html_to_text(html)) is None
    assert INVALID_XML.search(clean_text(html)) is None


@settings(max_examples=200)
@given(html=html_soup, base=st.one_of(st.text(), st.text().map("https://".__add__)))
def test_any_base_url_is_survived(html: str, base: str) -> None:
    assert_safe(sanitize_html(html, base))


@settings(max_examples=300)
@given(html=html_soup)
def test_fast_text_of_sanitized_html_equals_parsed_text(html: str) -> None:
    sanitized = sanitize_html(html, BASE)
    assert sanitized_html_to_text(sanitized) == html_to_text(sanitized)


@given(html=html_soup)
def test_sanitizing_twice_changes_nothing(html: str) -> None:
    once = sanitize_html(html, BASE)
    assert sanitize_html(once, BASE) == once


# --------------------------------------------------------------------------- text


def test_html_to_text_separates_blocks_and_decodes_entities() -> None:
    html = (
        "<h1>Kop</h1><p>Eerste&nbsp;alinea &amp; meer</p><ul><li>een</li><li>twee</li></ul>"
        "<p>ge<b>bold</b>e tekst<br>regel</p><script>alert(1)</script><style>p{}</style>"
        "<p>&lt;b&gt; is geen tag</p>"
    )
    assert html_to_text(html) == (
        "Kop Eerste alinea & meer een twee gebolde tekst regel <b> is geen tag"
    )


def test_html_to_text_of_plain_text_collapses_whitespace() -> None:
    assert html_to_text("  een\n\ttwee  drie\x00 ") == "een twee drie"
    assert html_to_text("") == ""


def test_clean_text_strips_markup_and_keeps_words() -> None:
    assert clean_text("<b>Open</b> source &amp; marketing") == "Open source & marketing"
    assert clean_text("Marketing &lt;3 &quot;jij&quot;") == 'Marketing <3 "jij"'
    assert clean_text("5 < 6 en 7 > 3") == "5 < 6 en 7 > 3"


def test_clean_text_title_traps() -> None:
    assert clean_text("Waarom <title> ertoe doet</title> voor SEO") == "Waarom ertoe doet voor SEO"
    assert clean_text("</title><script>alert(1)</script>Kop") == "Kop"
    assert clean_text("Kop\x00met\ud800 rommel\x1b") == "Kopmet rommel"


def test_clean_text_caps_length_with_an_ellipsis() -> None:
    title = "woord " * 400
    capped = clean_text(title)
    assert len(capped) <= TITLE_MAX_LENGTH
    assert capped.endswith("woord…")
    unbroken = clean_text("x" * 5000, max_length=50)
    assert unbroken == "x" * 49 + "…"


def test_clean_text_of_nothing_is_empty() -> None:
    assert clean_text(None) == ""
    assert clean_text("  \n ") == ""


def test_strip_control_chars_keeps_tab_newline_return() -> None:
    assert strip_control_chars("a\tb\nc\rd\x00e\x9f\ufffff") == "a\tb\nc\rdef"


# --------------------------------------------------------------------------- urls


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("https://example.nl/a", None, "https://example.nl/a"),
        ("  http://example.nl/a \n", None, "http://example.nl/a"),
        ("/reacties/feed/", "https://example.nl/post/", "https://example.nl/reacties/feed/"),
        ("feed/", "https://example.nl/post/", "https://example.nl/post/feed/"),
        ("//cdn.example.nl/x", "https://example.nl/", "https://cdn.example.nl/x"),
        ("https://example.nl/a b", None, "https://example.nl/a%20b"),
        ("https://exa\nmple.nl/a", None, "https://example.nl/a"),
        ("https://exa mple.nl/a", None, None),
        ("http://[::1]:8080/x", None, "http://[::1]:8080/x"),
        ("/relative", None, None),
        ("javascript:alert(1)", "https://example.nl/", None),
        (" java\tscript:alert(1)", None, None),
        ("data:text/html,x", None, None),
        ("ftp://example.nl/", None, None),
        ("file:///etc/passwd", None, None),
        ("mailto:a@example.nl", None, None),
        ("http://", None, None),
        ("http://[::1", None, None),
        ("http://example.nl:99999/", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_safe_url(url: str | None, base: str | None, expected: str | None) -> None:
    assert safe_url(url, base) == expected


def test_safe_url_allows_mailto_only_when_asked() -> None:
    assert safe_url("mailto:a@example.nl", allow_mailto=True) == "mailto:a@example.nl"
    assert safe_url("mailto:", allow_mailto=True) is None
    assert safe_url("javascript:x", allow_mailto=True) is None


@given(st.text())
def test_safe_url_never_raises_and_gives_http_or_nothing(url: str) -> None:
    result = safe_url(url, "https://example.nl/")
    if result is not None:
        assert result.lower().startswith(("http://", "https://"))
