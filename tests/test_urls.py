"""urls: one canonical key for every spelling of an article's address."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from feedparser.urls import _urljoin as feedparser_urljoin
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.urls import canonical_url, fast_urljoin

KEY = "https://marketingfacts.nl/berichten/open-source-dringt-door"


@pytest.mark.parametrize(
    "variant",
    [
        "https://marketingfacts.nl/berichten/open-source-dringt-door",
        "http://marketingfacts.nl/berichten/open-source-dringt-door",
        "https://www.marketingfacts.nl/berichten/open-source-dringt-door/",
        "HTTP://WWW.MarketingFacts.NL:80/berichten/open-source-dringt-door",
        "https://marketingfacts.nl:443/berichten/open-source-dringt-door#reacties",
        "https://m.marketingfacts.nl/berichten/open-source-dringt-door",
        "https://marketingfacts.nl./berichten/open-source-dringt-door",
        "https://marketingfacts.nl/berichten/open-source-dringt-door/index.html",
        "https://marketingfacts.nl/berichten/open-source-dringt-door/index.php",
        "https://marketingfacts.nl/berichten/open-source-dringt-door/amp/",
        "https://marketingfacts.nl/berichten/open-source-dringt-door?amp=1",
        "https://marketingfacts.nl/berichten/open-source-dringt-door?amp",
        "https://user:pw@marketingfacts.nl/berichten/open-source-dringt-door",
        "https://marketingfacts.nl/berichten/./x/../open-source-dringt-door",
        "https://marketingfacts.nl/%62erichten/open%2Dsource-dringt-door",
        "  https://marketingfacts.nl/berichten/open-source-dringt-door\n",
        "https://marketingfacts.nl/berichten/open-source-dringt-door?utm_source=feedburner"
        "&utm_medium=feed&utm_campaign=Feed%3A+marketingfacts",
        "https://marketingfacts.nl/berichten/open-source-dringt-door?fbclid=IwAR0x&gclid=abc"
        "&dclid=1&msclkid=2&mc_cid=3&mc_eid=4&_hsenc=5&_hsmi=6&igshid=7&yclid=8&wt_mc=9"
        "&WT.mc_id=10&at_medium=11&at_campaign=12&ref_src=13&cmpid=14&UTM_Content=15",
    ],
)
def test_variants_share_one_key(variant: str) -> None:
    assert canonical_url(variant) == KEY


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.nl", "https://example.nl/"),
        ("https://example.nl/?", "https://example.nl/"),
        ("https://example.nl/index.html", "https://example.nl/"),
        ("https://example.nl/?p=123&utm_source=rss", "https://example.nl/?p=123"),
        ("https://example.nl/?b=2&a=1&a=0", "https://example.nl/?a=0&a=1&b=2"),
        # "ref" and "source" are left alone: on some sites they select content.
        ("https://example.nl/x?ref=home&source=a", "https://example.nl/x?ref=home&source=a"),
        ("https://example.nl:8080/x", "https://example.nl:8080/x"),
        ("https://example.nl/A/B", "https://example.nl/A/B"),
        ("https://example.nl/a%2fb", "https://example.nl/a%2Fb"),
        ("https://example.nl/caf%c3%a9", "https://example.nl/caf%C3%A9"),
        ("https://example.nl/café", "https://example.nl/caf%C3%A9"),
        ("https://example.nl/a b", "https://example.nl/a%20b"),
        ("https://example.nl/100%", "https://example.nl/100%25"),
        ("https://www.com/", "https://www.com/"),
        ("https://www.m.example.nl/", "https://example.nl/"),
        ("https://bücher.de/", "https://xn--bcher-kva.de/"),
        ("http://[2001:DB8::1]:80/x", "https://[2001:db8::1]/x"),
    ],
)
def test_canonical_forms(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "", "   ", "javascript:alert(1)", "mailto:a@example.nl", "ftp://example.nl/",
        "data:text/html,x", "/relative/path", "example.nl/path", "http://", "https:///x",
        "http://[::1", "http://exa mple.nl/", "http://example.nl:99999/", "http://[zz::1]/",
    ],
)  # fmt: skip
def test_no_key_for_what_is_not_an_http_url(url: str) -> None:
    assert canonical_url(url) is None


def test_not_a_string_gives_none() -> None:
    assert canonical_url(None) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- properties

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_host = st.lists(_label, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "nl"]))
# No raw whitespace: it is not a URL character, and URL parsers strip it at
# the ends, so "https://h/ " and "https://h/ /" are not the same path plus a slash.
_segment = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1, max_size=8,
).filter(lambda s: s not in {".", ".."} and "/" not in s and "?" not in s and "#" not in s)
_path = st.lists(_segment, max_size=4).map(lambda parts: "/" + "/".join(parts))
_param = st.tuples(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.from_regex(r"[a-z0-9]{0,6}", fullmatch=True)
)
_params = st.lists(_param, max_size=4).filter(
    lambda ps: all(name != "amp" and not name.startswith("utm_") for name, _ in ps)
)


def _query(params: list[tuple[str, str]]) -> str:
    return "?" + "&".join(f"{name}={value}" for name, value in params) if params else ""


@settings(max_examples=300)
@given(host=_host, path=_path, params=_params, utm=st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_scheme_www_slash_and_tracking_variants_share_a_key(
    host: str, path: str, params: list[tuple[str, str]], utm: str
) -> None:
    plain = f"https://{host}{path}{_query(params)}"
    key = canonical_url(plain)
    assert key is not None
    tracked = [*params, ("utm_source", utm), ("fbclid", utm)]
    slashed = path if path.endswith("/") else path + "/"
    for variant in (
        f"http://{host}{path}{_query(params)}",
        f"https://www.{host}{path}{_query(params)}",
        f"HTTPS://{host.upper()}{path}{_query(params)}",
        f"https://{host}{slashed}{_query(params)}",
        f"https://{host}{path}{_query(tracked)}",
        f"http://www.{host}:80{slashed}{_query(tracked)}#fragment",
        f"https://{host}{path}{_query(list(reversed(params)))}",
    ):
        assert canonical_url(variant) == key, variant


@settings(max_examples=500)
@given(st.text())
def test_never_raises_and_is_idempotent_on_any_text(text: str) -> None:
    key = canonical_url(text)
    if key is not None:
        assert key.startswith("https://")
        assert canonical_url(key) == key


@settings(max_examples=500)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "hTtPs"]),
    host=_host,
    rest=st.text(max_size=40),
)
def test_idempotent_on_url_shaped_text(scheme: str, host: str, rest: str) -> None:
    key = canonical_url(f"{scheme}://{host}{rest}")
    if key is not None:
        assert canonical_url(key) == key


@given(rest=st.text(alphabet="/.%2eEaAmpindex.htmlphp?&=#_utm", max_size=30))
def test_idempotent_on_tricky_paths(rest: str) -> None:
    key = canonical_url("https://example.nl/" + rest)
    assert key is not None
    assert canonical_url(key) == key


# ---------------------------------------------------------------------- fast_urljoin

BASES = ["http://127.0.0.1:8080/b0000/feed/", "https://www.marketingfacts.nl/",
         "https://example.com/blog/post?x=1#c", "http://h", "https://blogger.com/feeds/1/posts/default",
         "ftp://example.com/", "http://[::1/", "//example.com/x", "", "https://bücher.de/"]


def assert_joins_like_urllib(base: str, uri: str) -> None:
    fast = fast_urljoin(base, uri)
    if fast is None:
        return
    assert fast == urljoin(base, uri)
    assert fast == feedparser_urljoin(base, uri)


@pytest.mark.parametrize(("base", "uri", "expected"), [
    ("http://127.0.0.1:1/b0000/feed/", "http://127.0.0.1:1/b0000/2025/04/lego-zoë-schmidt/",
     "http://127.0.0.1:1/b0000/2025/04/lego-zoë-schmidt/"),
    ("http://h/feed/", "https://h/ä.html?showComment=54#c-ü", "https://h/ä.html?showComment=54#c-ü"),
    ("http://h/feeds/posts/default", "tag:blogger.com,1999:blog-1.post-52",
     "tag:blogger.com,1999:blog-1.post-52"),
    ("https://h/", "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
     "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"),
    ("https://h/a/b", "/wp-content/x.jpg", "https://h/wp-content/x.jpg"),
    # Left to urllib: a relative path, dot segments, params, an empty query,
    # a scheme followed by "//", a base that is not plain.
    ("https://h/a/b", "c/d", None),
    ("https://h/a/b", "/x/../y", None),
    ("https://h/a/b", "https://h/x;p", None),
    ("https://h/a/b", "https://h/x?", None),
    ("https://h/a/b", "tag://x", None),
    ("https://bücher.de/", "tag:x", None),
])
def test_fast_urljoin_plain_cases(base: str, uri: str, expected: str | None) -> None:
    assert fast_urljoin(base, uri) == expected
    assert_joins_like_urllib(base, uri)


URI_PARTS = st.sampled_from(["http://", "https://", "tag:", "urn:", "TAG:", "tag://", "/", "//",
                             "", "h", "127.0.0.1:8", "ä", "ß", "/", "?", "#", ";", ".", "..",
                             "./", "../", "%", "%41", " ", "\t", "\x85", "\u3000", "@", ":",
                             "[", "]", "x", "0", "-"])


@settings(max_examples=1500, deadline=None)
@given(base=st.sampled_from(BASES), parts=st.lists(URI_PARTS, max_size=10),
       tail=st.text(max_size=6))
def test_fast_urljoin_is_urllib_s_join_wherever_it_answers(
        base: str, parts: list[str], tail: str) -> None:
    assert_joins_like_urllib(base, "".join(parts) + tail)
