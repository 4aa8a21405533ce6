"""A large corpus of blog feeds for the speed benchmark (issue 5).

``python bench/perf_corpus.py OUT_DIR --feeds 1000 --posts 25000 --seed 1``
writes, offline and in well under a minute:

- ``feeds/bNNNN.xml``: one feed per blog, about 60 % WordPress-style RSS 2.0
  (``content:encoded``, ``dc:creator``, ``wfw:commentRss`` and
  ``slash:comments``) and 40 % Blogger-style Atom 1.0 (``thr:total`` and a
  ``rel="replies"`` link). Blogs write in Dutch, German or English;
- posts of 2–6 KB of HTML as blogs really send it: paragraphs with links and
  emphasis, headings, lists, WordPress image markup with ``srcset``,
  quotes, embeds, and now and then inline styles, ``onclick`` handlers,
  ``<script>`` and tracking pixels that a sanitizer has to remove;
- ``comments/bNNNN/pNNNNNN.xml``: comment feeds for about 10 % of the posts
  (1–8 comments each), RSS for WordPress blogs, Atom with
  ``thr:in-reply-to`` for Blogger ones. Only those posts name a comment
  feed, so a client that follows comment feeds fetches exactly these.
  With ``--comment-feeds every``, every post names one, as WordPress and
  Blogger do: the others declare 0 comments and their feeds are empty;
- around the posts, what the platform writes (since version 5, ``--markup
  real``): 30 % of the WordPress blogs run Jetpack (a site and post id in
  WordPress.com's namespace, the author's avatar as ``media:content``), more
  have a site icon as the channel's ``<image>``, 5 % print a newline before
  the XML declaration (a plugin's fault, common in the wild), and every
  Blogger author has a profile link, a no-reply address and a ``gd:image``
  avatar, every Blogger post with a picture a ``media:thumbnail``;
- ``manifest.json``: URL path → file, content type and Last-Modified (the
  format tests/blogserver.py and bench/serve_corpus.py serve, ``{{BASE}}``
  standing for the server's origin), plus a ``corpus`` section with the
  feed paths and the counts a benchmark checks its results against.

The same arguments always give the same bytes. Text is stitched from
per-language vocabularies with enough combinations that two posts share no
more than stock phrases: the benchmark must not turn into a dedupe stress
test by accident.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

__all__ = ["CORPUS_VERSION", "CorpusStats", "generate", "main"]

#: Replaced by the serving origin (http://127.0.0.1:PORT) at serve time.
BASE = "{{BASE}}"
RSS_TYPE = "application/rss+xml; charset=UTF-8"
ATOM_TYPE = "application/atom+xml; charset=UTF-8"
#: Changes whenever a change to this file changes the output, so cached corpora are remade.
CORPUS_VERSION = 5
#: Posts are dated in the year before this moment, so runs are reproducible.
EPOCH = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- vocabulary

_NL = {
    "subjects": [
        "de marketeer", "het merk", "de consument", "ons team", "de klant", "een startup",
        "de webshop", "het bureau", "de adverteerder", "elke ondernemer", "de redactie",
        "de contentmanager", "het mkb", "de retailer", "de uitgever", "een goede strateeg",
        "de community manager", "de marketingafdeling", "de jonge doelgroep", "de lezer",
    ],
    "verbs": [
        "ontdekt", "bouwt", "meet", "verbetert", "deelt", "test", "lanceert", "analyseert",
        "onderschat", "vergeet", "waardeert", "bespreekt", "verandert", "zoekt", "kiest",
        "volgt", "vertrouwt", "gebruikt", "plant", "herschrijft",
    ],
    "objects": [
        "een nieuwe campagne", "de conversie", "het bereik", "de eigen community",
        "de klantreis", "de contentkalender", "het merkverhaal", "de nieuwsbrief",
        "een slimme landingspagina", "de zoekwoorden", "het advertentiebudget",
        "de reacties van fans", "user generated content", "de cijfers van vorig kwartaal",
        "een podcastreeks", "de merkgemeenschap", "de prijsstrategie", "de eerste indruk",
        "het klantonderzoek", "een persoonlijke aanpak",
    ],
    "adverbials": [
        "op sociale media", "via de nieuwsbrief", "in 2024", "zonder groot budget",
        "met influencers", "op LinkedIn", "in de winkel", "na de zomer", "met weinig moeite",
        "voor de feestdagen", "dankzij mond-tot-mondreclame", "op Instagram",
        "binnen drie maanden", "met content marketing", "in elke fase", "op de eigen site",
        "samen met klanten", "tijdens het evenement", "in Nederland", "voor de lange termijn",
    ],
    "openers": [
        "Daarom", "Bovendien", "Toch", "Vandaag", "Volgens onderzoek", "In de praktijk",
        "Gelukkig", "Uiteindelijk", "Vaak", "Soms",
    ],
    "adjectives": [
        "slimme", "nieuwe", "eerlijke", "snelle", "lokale", "duurzame", "persoonlijke",
        "verrassende", "simpele", "grote",
    ],
    "nouns": [
        "campagnes", "merken", "trends", "tips", "lessen", "fouten", "ideeën", "cijfers",
        "kansen", "vragen", "strategieën", "voorbeelden",
    ],
    "title_tails": ["voor marketeers", "in 2025", "die werken", "om te onthouden",
                    "uit de praktijk", "voor je webshop", "op sociale media"],
    "read_more": "Lees verder",
    "comment_lines": [
        "Mooi stuk, dank voor het delen!", "Herkenbaar verhaal.",
        "Ben het hier niet helemaal mee eens.", "Goede tips, die ga ik gebruiken.",
        "Interessant, zijn er ook cijfers over kleinere bedrijven?",
    ],
    "comments_on": "Reacties op",
    "by": "Door",
}

_DE = {
    "subjects": [
        "der Marketer", "die Marke", "der Kunde", "unser Team", "das Startup", "der Händler",
        "die Agentur", "der Werbetreibende", "jeder Unternehmer", "die Redaktion",
        "der Onlineshop", "der Mittelstand", "die Verlegerin", "die junge Zielgruppe",
        "der Leser", "die Marketingabteilung", "ein guter Stratege", "die Community-Managerin",
        "der Vertrieb", "die Geschäftsführung",
    ],
    "verbs": [
        "entdeckt", "baut", "misst", "verbessert", "teilt", "testet", "startet", "analysiert",
        "unterschätzt", "vergisst", "schätzt", "bespricht", "verändert", "sucht", "wählt",
        "verfolgt", "vertraut", "nutzt", "plant", "überarbeitet",
    ],
    "objects": [
        "eine neue Kampagne", "die Conversion", "die Reichweite", "die eigene Community",
        "die Customer Journey", "den Redaktionsplan", "die Markengeschichte", "den Newsletter",
        "eine kluge Landingpage", "die Suchbegriffe", "das Werbebudget",
        "die Kommentare der Fans", "nutzergenerierte Inhalte", "die Zahlen des letzten Quartals",
        "eine Podcastreihe", "die Markengemeinschaft", "die Preisstrategie",
        "den ersten Eindruck", "die Kundenbefragung", "einen persönlichen Ansatz",
    ],
    "adverbials": [
        "in sozialen Medien", "über den Newsletter", "im Jahr 2024", "ohne großes Budget",
        "mit Influencern", "auf LinkedIn", "im Laden", "nach dem Sommer", "mit wenig Aufwand",
        "vor den Feiertagen", "dank Mundpropaganda", "auf Instagram", "innerhalb von drei Monaten",
        "mit Content-Marketing", "in jeder Phase", "auf der eigenen Website",
        "gemeinsam mit Kunden", "während der Messe", "in Deutschland", "auf lange Sicht",
    ],
    "openers": [
        "Deshalb", "Außerdem", "Trotzdem", "Heute", "Laut einer Studie", "In der Praxis",
        "Zum Glück", "Am Ende", "Oft", "Manchmal",
    ],
    "adjectives": [
        "kluge", "neue", "ehrliche", "schnelle", "lokale", "nachhaltige", "persönliche",
        "überraschende", "einfache", "große",
    ],
    "nouns": [
        "Kampagnen", "Marken", "Trends", "Tipps", "Lektionen", "Fehler", "Ideen", "Zahlen",
        "Chancen", "Fragen", "Strategien", "Beispiele",
    ],
    "title_tails": ["für Marketer", "im Jahr 2025", "die funktionieren", "zum Merken",
                    "aus der Praxis", "für Ihren Shop", "in sozialen Medien"],
    "read_more": "Weiterlesen",
    "comment_lines": [
        "Schöner Beitrag, danke fürs Teilen!", "Kenne ich aus eigener Erfahrung.",
        "Da bin ich nicht ganz einverstanden.", "Gute Tipps, die probiere ich aus.",
        "Spannend, gibt es dazu auch Zahlen für kleine Firmen?",
    ],
    "comments_on": "Kommentare zu",
    "by": "Von",
}

_EN = {
    "subjects": [
        "the marketer", "the brand", "the customer", "our team", "a startup", "the retailer",
        "the agency", "the advertiser", "every founder", "the editorial team", "the web shop",
        "a small business", "the publisher", "the young audience", "the reader",
        "the marketing department", "a good strategist", "the community manager",
        "the sales team", "the board",
    ],
    "verbs": [
        "discovers", "builds", "measures", "improves", "shares", "tests", "launches",
        "analyses", "underestimates", "forgets", "values", "discusses", "changes", "looks for",
        "chooses", "follows", "trusts", "uses", "plans", "rewrites",
    ],
    "objects": [
        "a new campaign", "the conversion rate", "its reach", "its own community",
        "the customer journey", "the content calendar", "the brand story", "the newsletter",
        "a smart landing page", "the keywords", "the ad budget", "the comments of fans",
        "user generated content", "last quarter's numbers", "a podcast series",
        "the brand community", "the pricing strategy", "the first impression",
        "the customer survey", "a personal approach",
    ],
    "adverbials": [
        "on social media", "through the newsletter", "in 2024", "without a big budget",
        "with influencers", "on LinkedIn", "in the store", "after the summer",
        "with little effort", "before the holidays", "thanks to word of mouth", "on Instagram",
        "within three months", "with content marketing", "at every stage", "on its own site",
        "together with customers", "during the conference", "in the UK", "for the long run",
    ],
    "openers": [
        "That is why", "Moreover", "Still", "Today", "According to research", "In practice",
        "Fortunately", "In the end", "Often", "Sometimes",
    ],
    "adjectives": [
        "smart", "new", "honest", "quick", "local", "sustainable", "personal", "surprising",
        "simple", "big",
    ],
    "nouns": [
        "campaigns", "brands", "trends", "tips", "lessons", "mistakes", "ideas", "numbers",
        "opportunities", "questions", "strategies", "examples",
    ],
    "title_tails": ["for marketers", "in 2025", "that work", "to remember", "from practice",
                    "for your shop", "on social media"],
    "read_more": "Read more",
    "comment_lines": [
        "Great piece, thanks for sharing!", "Sounds familiar.",
        "I don't fully agree with this.", "Good tips, I will use them.",
        "Interesting, are there numbers for smaller companies too?",
    ],
    "comments_on": "Comments on",
    "by": "By",
}

# Compound nouns (Dutch, German) and noun pairs (English) give every language
# about a thousand content words, so two unrelated posts share few word
# trigrams (Jaccard about 0.02, as real posts do) and dedupe finds few candidates.
_NL["heads"] = ["merk", "klant", "content", "markt", "prijs", "winkel", "zoek", "web", "nieuws",
                "video", "data", "campagne", "product", "reclame", "fan", "media", "service",
                "verkoop", "community", "pers", "beeld", "tekst", "blog", "doelgroep", "budget",
                "groei", "mail", "advertentie", "koop", "kanaal"]
_NL["tails"] = ["strategie", "onderzoek", "beleid", "campagne", "verhaal", "plan", "analyse",
                "ervaring", "gedrag", "kanaal", "bereik", "waarde", "loyaliteit", "groep",
                "cijfers", "rapport", "aanpak", "budget", "pagina", "platform", "bericht", "tool",
                "test", "doel", "kalender", "moment", "relatie", "partner", "tevredenheid",
                "belofte", "identiteit", "positie", "ontwerp", "team", "markt", "reis", "vraag",
                "concept", "model", "manager"]
_NL["articles"] = ["de", "de", "het", "een", "onze", "hun"]
_NL["more"] = ["bij {brand}", "in {month} {year}", "voor {n} klanten", "met {name}",
               "rond de {compound}", "na de {compound}"]
_NL["months"] = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
                 "september", "oktober", "november", "december"]
_DE["heads"] = ["Marken", "Kunden", "Content", "Markt", "Preis", "Laden", "Such", "Web",
                "Nachrichten", "Video", "Daten", "Kampagnen", "Produkt", "Werbe", "Fan", "Medien",
                "Service", "Vertriebs", "Community", "Presse", "Bild", "Text", "Blog", "Ziel",
                "Budget", "Wachstums", "Mail", "Anzeigen", "Kauf", "Kanal"]
_DE["tails"] = ["strategie", "forschung", "politik", "kampagne", "geschichte", "plan", "analyse",
                "erlebnis", "verhalten", "kanal", "reichweite", "wert", "treue", "gruppe", "zahlen",
                "bericht", "ansatz", "budget", "seite", "plattform", "nachricht", "werkzeug",
                "test", "ziel", "kalender", "moment", "beziehung", "partner", "zufriedenheit",
                "versprechen", "identität", "position", "gestaltung", "team", "markt", "reise",
                "frage", "konzept", "modell", "leiter"]
_DE["articles"] = ["die", "die", "eine", "unsere", "ihre", "jede"]
_DE["more"] = ["bei {brand}", "im {month} {year}", "für {n} Kunden", "mit {name}",
               "rund um die {compound}", "nach der {compound}"]
_DE["months"] = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                 "September", "Oktober", "November", "Dezember"]
_EN["heads"] = ["brand", "customer", "content", "market", "price", "store", "search", "web",
                "news", "video", "data", "campaign", "product", "ad", "fan", "media", "service",
                "sales", "community", "press", "image", "copy", "blog", "audience", "budget",
                "growth", "email", "display", "purchase", "channel"]
_EN["tails"] = ["strategy", "research", "policy", "campaign", "story", "plan", "analysis",
                "experience", "behaviour", "channel", "reach", "value", "loyalty", "group",
                "numbers", "report", "approach", "budget", "page", "platform", "message", "tool",
                "test", "target", "calendar", "moment", "relationship", "partner", "satisfaction",
                "promise", "identity", "position", "design", "team", "market", "journey",
                "question", "concept", "model", "manager"]
_EN["articles"] = ["the", "the", "a", "our", "their", "every"]
_EN["more"] = ["at {brand}", "in {month} {year}", "for {n} customers", "with {name}",
               "around the {compound}", "after the {compound}"]
_EN["months"] = ["January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December"]

_VOCAB = {"nl": _NL, "de": _DE, "en": _EN}
_LANG_TAGS = {"nl": "nl-NL", "de": "de-DE", "en": "en-US"}
_FIRST = ["Anna", "Bas", "Claudia", "Daan", "Eva", "Felix", "Greta", "Hans", "Iris", "Jan",
          "Katrin", "Lars", "Marieke", "Niels", "Olga", "Pieter", "Ruth", "Sven", "Tom", "Ute",
          "Vera", "Wim", "Yara", "Zoë", "Emma", "Lukas", "Sophie", "Jonas", "Mila", "Noah"]
_LAST = ["de Vries", "Jansen", "Müller", "Schmidt", "Bakker", "Visser", "Smith", "Brown",
         "Meijer", "Weber", "Wagner", "de Boer", "Mulder", "Becker", "Hoffmann", "Peters",
         "Taylor", "van Dijk", "Koch", "Richter", "Hendriks", "Wilson", "Klein", "Wolf"]
_BRANDS = ["Heineken", "Philips", "Coolblue", "bol.com", "Zalando", "Otto", "Lidl", "Nike",
           "Unilever", "Spotify", "Albert Heijn", "Rabobank", "Adidas", "Tchibo", "IKEA",
           "Hema", "Douglas", "Booking.com", "Miele", "Lego", "Red Bull", "Dove", "Oatly"]
_CATEGORIES = ["Social media", "Content marketing", "Trends", "Brand communities",
               "Word of mouth", "E-mail", "SEO", "Webshops", "Onderzoek", "Events", "Video",
               "Podcasts", "Strategie", "Influencers", "Retail"]
_TOPICS_WORDS = ["marketing", "social", "content", "brand", "retail", "growth", "media",
                 "digital", "community", "trends", "online", "commerce", "insights", "buzz"]
_BLOG_WORDS = ["blog", "journal", "notes", "weekly", "lab", "log", "post", "desk", "talk"]


# --------------------------------------------------------------------------- text



#: How a blog's editor dresses its posts, by platform. Real blog HTML carries
#: more markup per kilobyte than a hand-written paragraph: WordPress's block
#: editor classes every heading and list and turns quotes and dashes into
#: character references (wptexturize); page builders such as Elementor,
#: common on marketing blogs, wrap every block in classed divs with data
#: attributes; Blogger's editor writes spans with inline styles, <br /> pairs
#: for paragraphs and &nbsp; between sentences. feedparser with its sanitizer
#: reads this markup about 15 % slower than the plain markup of corpus
#: version 3 ("light"), Blogger's 35 % slower.
WORDPRESS_STYLES = (("gutenberg", 0.55), ("pagebuilder", 0.30), ("classic", 0.15))
MARKUP_CHOICES = ("real", "light")
#: Which posts name a comment feed: those with comments, or every post.
COMMENT_FEED_CHOICES = ("commented", "every")

_TAG_OR_TEXT = re.compile(r"(<[^>]+>)")
_EXTERNAL_LINK = re.compile(r'<a href="(https://www\.[^"]+)">')
_FIGURE_IMG = re.compile(r'srcset="([^"]+?)-768x432\.jpg 768w"')


class _Markup:
    """Turns a block of plain post HTML into what one blogging platform sends."""

    def __init__(self, style: str, rng: random.Random) -> None:
        self.style = style
        self.rng = rng

    def _id(self) -> str:
        return f"{self.rng.getrandbits(28):07x}"

    def _texturize(self, block: str) -> str:
        """Curly quotes, dashes and no-break spaces as WordPress writes them."""
        rng = self.rng
        parts = _TAG_OR_TEXT.split(block)
        for i in range(0, len(parts), 2):
            text = parts[i].replace(" %", "&nbsp;%").replace("'", "&#8217;")
            if len(text) > 40 and rng.random() < 0.6:
                words = text.split(" ")
                k = rng.randrange(1, len(words) - 1) if len(words) > 3 else 0
                words[k] = f"&#8220;{words[k]}&#8221;"
                if rng.random() < 0.5 and k + 2 < len(words):
                    words[k + 2] = "&#8211; " + words[k + 2]
                text = " ".join(words)
            parts[i] = text
        return "".join(parts)

    def _wordpress(self, block: str) -> str:
        block = self._texturize(block)
        block = _EXTERNAL_LINK.sub(
            r'<a href="\1" target="_blank" rel="noreferrer noopener">', block)
        if block.startswith("<h2>"):
            block = f'<h2 class="wp-block-heading" id="h-{self._id()}">' + block[4:]
        elif block.startswith(("<ul>", "<ol>")):
            block = f'{block[:3]} class="wp-block-list">' + block[4:]
        elif block.startswith("<blockquote>"):
            block = ('<blockquote class="wp-block-quote is-layout-flow '
                     'wp-block-quote-is-layout-flow">' + block[12:])
        # WordPress offers five sizes of every upload, not three.
        return _FIGURE_IMG.sub(
            r'srcset="\1-768x432.jpg 768w, \1-1024x576.jpg 1024w, \1-1536x864.jpg 1536w"',
            block)

    def _widget(self, block: str, kind: str) -> str:
        ident = self._id()
        return (f'<div class="elementor-element elementor-element-{ident} '
                f'elementor-widget elementor-widget-{kind}" data-id="{ident}" '
                f'data-element_type="widget" data-widget_type="{kind}.default">\n'
                f'<div class="elementor-widget-container">\n{block}</div>\n</div>\n')

    def _blogger(self, block: str) -> str:
        rng = self.rng
        if block.startswith("<p>") or block.startswith("<p "):
            inner = block[block.index(">") + 1:block.rindex("</p>")]
            inner = inner.replace(". ", ".&nbsp; ", 1)
            font = rng.choice(("arial, sans-serif", "georgia, serif", "verdana, sans-serif"))
            return (f'<span style="font-family: {font};"><span style="font-size: medium;">'
                    f"{inner}</span></span><br /><br />\n")
        if block.startswith("<figure"):
            src = re.search(r'src="([^"]+)"', block)
            if src:
                url = src.group(1)
                return ('<div class="separator" style="clear: both; text-align: center;">'
                        f'<a href="{url}" imageanchor="1" style="margin-left: 1em; '
                        f'margin-right: 1em;"><img border="0" data-original-height="1067" '
                        f'data-original-width="1600" height="213" src="{url}" width="320" />'
                        "</a></div><br />\n")
        if block.startswith("<h2>"):
            return (f'<h2 style="text-align: left;"><span style="font-family: arial, '
                    f'sans-serif;">{block[4:block.rindex("</h2>")]}</span></h2>\n')
        return block

    def block(self, block: str) -> str:
        if self.style == "classic":
            return block
        if self.style == "blogger":
            return self._blogger(block)
        block = self._wordpress(block)
        if self.style == "pagebuilder":
            kind = "heading" if block.startswith("<h2") else (
                "image" if block.startswith("<figure") else "text-editor")
            block = self._widget(block, kind)
            if self.rng.random() < 0.3:  # a new section: a container of containers
                ident = self._id()
                block = (f'<div class="elementor-element elementor-element-{ident} e-flex '
                         f'e-con-boxed e-con e-parent" data-id="{ident}" '
                         'data-element_type="container" data-settings="{&quot;'
                         'background_background&quot;:&quot;classic&quot;}">\n'
                         f'<div class="e-con-inner">\n{block}</div>\n</div>\n')
        return block

    def post(self, blocks: list[str]) -> str:
        body = "".join(blocks)
        if self.style == "pagebuilder":
            ident = self.rng.randint(1000, 99999)
            return (f'<div data-elementor-type="wp-post" data-elementor-id="{ident}" '
                    f'class="elementor elementor-{ident}" data-elementor-post-type="post">\n'
                    f"{body}</div>\n")
        if self.style == "blogger":
            return f'<div dir="ltr" style="text-align: left;" trbidi="on">\n{body}</div>\n'
        return body


class _Writer:
    """Sentences, titles and post HTML in one language from one random stream."""

    def __init__(self, rng: random.Random, language: str, markup: str = "classic",
                 markup_rng: random.Random | None = None) -> None:
        self.rng = rng
        self.language = language
        self.markup = _Markup(markup, markup_rng or random.Random(0))
        # Each blog has its own stock phrases, as writers do: phrases that every
        # post of every blog shared would make all posts look alike to MinHash.
        self.v = dict(_VOCAB[language])
        for key, keep in (("subjects", 6), ("objects", 6), ("adverbials", 6), ("openers", 4)):
            self.v[key] = rng.sample(self.v[key], keep)

    def compound(self) -> str:
        head, tail = self.rng.choice(self.v["heads"]), self.rng.choice(self.v["tails"])
        return f"{head} {tail}" if self.language == "en" else head + tail

    def subject(self) -> str:
        roll = self.rng.random()
        if roll < 0.3:
            return self.rng.choice(self.v["subjects"])
        if roll < 0.7:
            return f"{self.rng.choice(self.v['articles'])} {self.compound()}"
        return self.rng.choice(_BRANDS) if roll < 0.85 else \
            f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def object(self) -> str:
        rng, v = self.rng, self.v
        if rng.random() < 0.15:
            return rng.choice(v["objects"])
        adjective = f"{rng.choice(v['adjectives'])} " if rng.random() < 0.5 else ""
        return f"{rng.choice(v['articles'])} {adjective}{self.compound()}"

    def adverbial(self) -> str:
        rng, v = self.rng, self.v
        if rng.random() < 0.3:
            return rng.choice(v["adverbials"])
        return rng.choice(v["more"]).format(
            brand=rng.choice(_BRANDS), month=rng.choice(v["months"]),
            year=rng.randint(2015, 2025), n=rng.randint(12, 4000),
            name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", compound=self.compound())

    def sentence(self) -> str:
        rng, v = self.rng, self.v
        shape = rng.random()
        if shape < 0.45:
            text = f"{self.subject()} {rng.choice(v['verbs'])} {self.object()} {self.adverbial()}"
        elif shape < 0.75:
            if self.language == "en":
                text = f"{rng.choice(v['openers'])}, {self.subject()} {rng.choice(v['verbs'])} " \
                       f"{self.object()} {self.adverbial()}"
            else:  # verb second after an opener, as Dutch and German have it
                text = f"{rng.choice(v['openers'])} {rng.choice(v['verbs'])} {self.subject()} " \
                       f"{self.object()} {self.adverbial()}"
        elif shape < 0.9:
            text = f"{self.subject()} {rng.choice(v['verbs'])} {self.object()} " \
                   f"{self.adverbial()} {self.adverbial()}"
        else:
            text = f"{rng.choice(_BRANDS)} {rng.choice(v['verbs'])} {self.object()} " \
                   f"{self.adverbial()} ({rng.randint(2, 98)} %)"
        return text[0].upper() + text[1:] + rng.choice(".....!?")

    def title(self) -> str:
        rng, v = self.rng, self.v
        shape = rng.random()
        if shape < 0.4:
            text = f"{rng.randint(3, 21)} {rng.choice(v['adjectives'])} {rng.choice(v['nouns'])} " \
                   f"{rng.choice(v['title_tails'])}: {self.compound()}"
        elif shape < 0.7:
            text = f"{rng.choice(_BRANDS)}: {self.subject()} {rng.choice(v['verbs'])} " \
                   f"{self.object()}"
        else:
            text = f"{rng.choice(v['adjectives'])} {self.compound()} " \
                   f"{self.adverbial()} ({rng.choice(_BRANDS)})"
        return text[0].upper() + text[1:]

    def paragraph(self, base: str, post_no: int) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randint(2, 5)):
            sentence = html.escape(self.sentence(), quote=False)
            roll = rng.random()
            if roll < 0.18:
                word_end = sentence.find(" ", 8)
                if word_end > 0:
                    target = (f"https://www.{rng.choice(_BRANDS).lower().replace(' ', '')}"
                              f".example/{rng.randint(1, 9999)}" if rng.random() < 0.5
                              else f"{base}/{rng.randint(2019, 2025)}/{post_no % 12 + 1:02d}/"
                                   f"artikel-{rng.randint(1, 99999)}/")
                    sentence = (f'<a href="{target}">{sentence[:word_end]}</a>'
                                f"{sentence[word_end:]}")
            elif roll < 0.28:
                sentence = f"<strong>{sentence}</strong>"
            elif roll < 0.34:
                sentence = f"<em>{sentence}</em>"
            parts.append(sentence)
        style = ' style="text-align: justify;"' if rng.random() < 0.08 else ""
        return f"<p{style}>{' '.join(parts)}</p>\n"

    def post_html(self, target_bytes: int, base: str, post_no: int) -> str:
        """Blocks of HTML until the post is about ``target_bytes`` long (UTF-8)."""
        rng = self.rng
        blocks: list[str] = [self.markup.block(self.paragraph(base, post_no))]
        size = len(blocks[0])
        hostile = rng.random() < 0.12
        while size < target_bytes:
            roll = rng.random()
            if roll < 0.58:
                block = self.paragraph(base, post_no)
            elif roll < 0.66:
                block = f"<h2>{html.escape(self.title(), quote=False)}</h2>\n"
            elif roll < 0.76:
                tag = "ul" if rng.random() < 0.7 else "ol"
                items = "".join(f"<li>{html.escape(self.sentence(), quote=False)}</li>\n"
                                for _ in range(rng.randint(3, 6)))
                block = f"<{tag}>\n{items}</{tag}>\n"
            elif roll < 0.86:
                image = rng.randint(1000, 99999)
                src = f"{base}/wp-content/uploads/2024/{post_no % 12 + 1:02d}/beeld-{image}"
                width = rng.choice((640, 800, 1024, 1200))
                height = width * rng.choice((9, 10, 12)) // 16
                block = (
                    f'<figure class="wp-block-image size-large"><img loading="lazy" '
                    f'decoding="async" width="{width}" height="{height}" src="{src}.jpg" '
                    f'alt="{html.escape(self.title())}" class="wp-image-{image}" '
                    f'srcset="{src}.jpg {width}w, {src}-300x169.jpg 300w, '
                    f'{src}-768x432.jpg 768w" sizes="(max-width: {width}px) 100vw, '
                    f'{width}px" /><figcaption>{html.escape(self.sentence(), quote=False)}'
                    f"</figcaption></figure>\n"
                )
            elif roll < 0.93:
                block = (f"<blockquote><p>{html.escape(self.sentence(), quote=False)}</p>"
                         f"<cite>{rng.choice(_FIRST)} {rng.choice(_LAST)}</cite></blockquote>\n")
            elif roll < 0.97:
                video = "".join(rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
                                           "0123456789_-") for _ in range(11))
                block = (
                    '<figure class="wp-block-embed is-type-video wp-block-embed-youtube">'
                    '<div class="wp-block-embed__wrapper"><iframe title="YouTube video" '
                    f'width="640" height="360" src="https://www.youtube.com/embed/{video}'
                    '?feature=oembed" frameborder="0" allow="autoplay; encrypted-media" '
                    "allowfullscreen></iframe></div></figure>\n"
                )
            else:
                block = (f'<p><span style="color: #{rng.randint(0, 0xFFFFFF):06x}; '
                         f'font-size: 14px;">{html.escape(self.sentence(), quote=False)}'
                         f"</span></p>\n")
            if hostile and rng.random() < 0.15:
                block += rng.choice((
                    '<script type="text/javascript">window._paq = window._paq || [];'
                    "_paq.push(['trackPageView']);</script>\n",
                    f'<p onclick="track({rng.randint(1, 999)})">'
                    f"{html.escape(self.sentence(), quote=False)}</p>\n",
                    f'<img src="https://pixel.tracker.example/p.gif?id={rng.randint(1, 10**9)}" '
                    'width="1" height="1" style="display:none" alt="" />\n',
                    '<div class="sharedaddy"><script async src="https://platform.example/'
                    'widgets.js" charset="utf-8"></script></div>\n',
                ))
            block = self.markup.block(block)
            blocks.append(block)
            size += len(block.encode("utf-8"))
        return self.markup.post(blocks)

    def excerpt(self, words: int = 40) -> str:
        text = " ".join(self.sentence() for _ in range(4)).split()
        return " ".join(text[:words]) + " […]"


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True, slots=True)
class _Platform:
    """What a blog's platform writes around the posts (``--markup real`` only).

    Taken from real feeds: WordPress.com and Jetpack add a site and post id in
    their own namespace and the author's avatar as media:content; WordPress
    adds the site icon as the channel's image; a plugin or theme that prints a
    newline before the XML declaration is a classic WordPress fault; Blogger
    gives every author a profile, a no-reply address and an avatar, and every
    post with a picture a thumbnail.
    """

    jetpack: bool = False
    site_icon: bool = False
    newline_first: bool = False
    blogger_profiles: bool = False


@dataclass(slots=True)
class _Post:
    number: int
    guid: str
    link: str
    title: str
    author: str
    published: datetime
    categories: list[str]
    body: str
    excerpt: str
    comments_path: str | None
    comment_count: int


@dataclass(slots=True)
class CorpusStats:
    """What a corpus holds; the benchmark compares its results with these."""

    feeds: int
    rss_feeds: int
    atom_feeds: int
    posts: int
    comment_feeds: int
    comments: int
    bytes: int
    languages: dict[str, int]
    seconds: float = 0.0
    #: Comment feeds of posts that declare 0 comments (``comment_feeds="every"``).
    empty_comment_feeds: int = 0


def _rss_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


_WPCOM = "com-wordpress:feed-additions:1"


def _avatar(author: str) -> str:
    digest = hashlib.md5(author.encode(), usedforsecurity=False).hexdigest()
    return (f'\t\t<media:content url="https://0.gravatar.com/avatar/{digest}?s=96&#38;d=identicon'
            f'&#38;r=G" medium="image">\n\t\t\t<media:title type="html">'
            f"{_esc(author.split()[0].lower())}</media:title>\n\t\t</media:content>\n")


def _rss_feed(blog: dict[str, str], posts: Sequence[_Post], language: str,
              platform: _Platform = _Platform()) -> str:
    items = []
    for post in posts:
        categories = "".join(f"\t\t<category>{_cdata(c)}</category>\n" for c in post.categories)
        comments = (f"\t\t<wfw:commentRss>{BASE}{post.comments_path}</wfw:commentRss>\n"
                    f"\t\t<slash:comments>{post.comment_count}</slash:comments>\n"
                    if post.comments_path else "")
        jetpack = (f'\t\t<post-id xmlns="{_WPCOM}">{post.number}</post-id>\n'
                   + _avatar(post.author)) if platform.jetpack else ""
        items.append(
            "\t<item>\n"
            f"\t\t<title>{_esc(post.title)}</title>\n"
            f"\t\t<link>{post.link}</link>\n"
            f"\t\t<comments>{post.link}#respond</comments>\n"
            f"\t\t<dc:creator>{_cdata(post.author)}</dc:creator>\n"
            f"\t\t<pubDate>{_rss_date(post.published)}</pubDate>\n"
            f"{categories}"
            f'\t\t<guid isPermaLink="false">{post.guid}</guid>\n'
            f"\t\t<description>{_cdata(post.excerpt)}</description>\n"
            f"\t\t<content:encoded>{_cdata(post.body)}</content:encoded>\n"
            f"{comments}{jetpack}"
            "\t</item>\n"
        )
    newest = max(post.published for post in posts)
    extra_ns = ('\txmlns:georss="http://www.georss.org/georss"\n'
                '\txmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#"\n'
                '\txmlns:media="http://search.yahoo.com/mrss/"\n') if platform.jetpack else ""
    icon = (f"<image>\n\t<url>{blog['site']}/wp-content/uploads/2024/01/cropped-icon-32x32.png"
            f"</url>\n\t<title>{_esc(blog['title'])}</title>\n\t<link>{blog['site']}</link>\n"
            "\t<width>32</width>\n\t<height>32</height>\n</image> \n"
            if platform.site_icon else "")
    site = (f'<site xmlns="{_WPCOM}">{blog["blog_id"][-9:]}</site>'
            if platform.jetpack else "")
    return (
        ("\n" if platform.newline_first else "")
        + '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"\n'
        '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
        '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"\n'
        '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '\txmlns:atom="http://www.w3.org/2005/Atom"\n'
        '\txmlns:sy="http://purl.org/rss/1.0/modules/syndication/"\n'
        '\txmlns:slash="http://purl.org/rss/1.0/modules/slash/"\n'
        f"{extra_ns}\t>\n\n<channel>\n"
        f"\t<title>{_esc(blog['title'])}</title>\n"
        f'\t<atom:link href="{BASE}{blog["feed_path"]}" rel="self" '
        'type="application/rss+xml" />\n'
        f"\t<link>{blog['site']}</link>\n"
        f"\t<description>{_esc(blog['tagline'])}</description>\n"
        f"\t<lastBuildDate>{_rss_date(newest)}</lastBuildDate>\n"
        f"\t<language>{_LANG_TAGS[language]}</language>\n"
        "\t<sy:updatePeriod>\n\thourly\t</sy:updatePeriod>\n"
        "\t<sy:updateFrequency>\n\t1\t</sy:updateFrequency>\n"
        "\t<generator>https://wordpress.org/?v=6.5.3</generator>\n"
        f"{icon}{site}"
        + "".join(items) +
        "</channel>\n</rss>\n"
    )


def _blogger_author(name: str, platform: _Platform) -> str:
    if not platform.blogger_profiles:
        return f"<author><name>{_esc(name)}</name></author>"
    profile = int(hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:15], 16)
    return (f"<author><name>{_esc(name)}</name>"
            f"<uri>http://www.blogger.com/profile/{profile}</uri>"
            "<email>noreply@blogger.com</email>"
            "<gd:image rel='http://schemas.google.com/g/2005#thumbnail' width='16' height='16' "
            "src='https://img1.blogblog.com/img/b16-rounded.gif'/></author>")


def _atom_feed(blog: dict[str, str], posts: Sequence[_Post], language: str,
               platform: _Platform = _Platform()) -> str:
    entries = []
    for post in posts:
        categories = "".join(
            f'<category scheme="http://www.blogger.com/atom/ns#" term="{_esc(c)}"/>'
            for c in post.categories)
        replies = ""
        if post.comments_path:
            replies = (
                f'<link rel="replies" type="application/atom+xml" '
                f'href="{BASE}{post.comments_path}" title="Post Comments" '
                f'thr:count="{post.comment_count}"/>'
                f'<link rel="replies" type="text/html" href="{post.link}#comment-form" '
                f'title="{post.comment_count} Comments"/>'
                f"<thr:total>{post.comment_count}</thr:total>"
            )
        entries.append(
            f"<entry><id>{post.guid}</id>"
            f"<published>{_iso(post.published)}</published>"
            f"<updated>{_iso(post.published + timedelta(minutes=17))}</updated>"
            f"{categories}"
            f"<title type=\"text\">{_esc(post.title)}</title>"
            f'<content type="html">{_esc(post.body)}</content>'
            f'<link rel="alternate" type="text/html" href="{post.link}" '
            f'title="{_esc(post.title)}"/>'
            f"{replies}"
            f"{_blogger_author(post.author, platform)}"
            f"{_thumbnail(post) if platform.blogger_profiles else ''}"
            "</entry>\n"
        )
    newest = max(post.published for post in posts)
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:openSearch="http://a9.com/-/spec/opensearchrss/1.0/" '
        + ('xmlns:gd="http://schemas.google.com/g/2005" ' if platform.blogger_profiles else "")
        + 'xmlns:thr="http://purl.org/syndication/thread/1.0" '
        f'xml:lang="{language}">'
        f"<id>tag:blogger.com,1999:blog-{blog['blog_id']}</id>"
        f"<updated>{_iso(newest)}</updated>"
        f'<title type="text">{_esc(blog["title"])}</title>'
        f'<subtitle type="html">{_esc(blog["tagline"])}</subtitle>'
        f'<link rel="self" type="application/atom+xml" href="{BASE}{blog["feed_path"]}"/>'
        f'<link rel="alternate" type="text/html" href="{blog["site"]}"/>'
        f"{_blogger_author(posts[0].author, platform)}"
        '<generator version="7.00" uri="http://www.blogger.com">Blogger</generator>'
        f"<openSearch:totalResults>{len(posts)}</openSearch:totalResults>\n"
        + "".join(entries) +
        "</feed>\n"
    )


_IMAGE = re.compile(r'<img [^>]*?src="([^"]+)"')


def _thumbnail(post: _Post) -> str:
    """Blogger's thumbnail of a post's first picture, in a namespace declared on the spot."""
    image = _IMAGE.search(post.body)
    if image is None:
        return ""
    return ("<media:thumbnail xmlns:media='http://search.yahoo.com/mrss/' "
            f"url='{image.group(1)}' height='72' width='72'/>")


def _comments(writer: _Writer, post: _Post) -> list[tuple[str, str, datetime, str]]:
    """(author, id suffix, date, HTML) for each comment on ``post``."""
    rng = writer.rng
    out = []
    moment = post.published
    for n in range(post.comment_count):
        moment += timedelta(minutes=rng.randint(5, 3000))
        lines = [rng.choice(writer.v["comment_lines"])]
        lines += [writer.sentence() for _ in range(rng.randint(1, 4))]
        body = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
        author = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" if rng.random() < 0.8 \
            else rng.choice(_FIRST).lower() + str(rng.randint(1, 99))
        out.append((author, f"{post.number * 10 + n}", moment, body))
    return out


def _rss_comments(writer: _Writer, blog: dict[str, str], post: _Post) -> str:
    v = writer.v
    items = []
    for author, suffix, moment, body in _comments(writer, post):
        items.append(
            "\t<item>\n"
            f"\t\t<title>{_esc(v['by'])}: {_esc(author)}</title>\n"
            f"\t\t<link>{post.link}#comment-{suffix}</link>\n"
            f"\t\t<dc:creator>{_cdata(author)}</dc:creator>\n"
            f"\t\t<pubDate>{_rss_date(moment)}</pubDate>\n"
            f'\t\t<guid isPermaLink="false">{blog["site"]}/?p={post.number}'
            f"#comment-{suffix}</guid>\n"
            f"\t\t<description>{_cdata(html.unescape(body.replace('</p><p>', ' ')[3:-4]))}"
            "</description>\n"
            f"\t\t<content:encoded>{_cdata(body)}</content:encoded>\n"
            "\t</item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"\n'
        '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
        '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '\txmlns:atom="http://www.w3.org/2005/Atom"\n'
        '\txmlns:sy="http://purl.org/rss/1.0/modules/syndication/"\n\t>\n<channel>\n'
        f"\t<title>{_esc(v['comments_on'])}: {_esc(post.title)}</title>\n"
        f'\t<atom:link href="{BASE}{post.comments_path}" rel="self" '
        'type="application/rss+xml" />\n'
        f"\t<link>{post.link}</link>\n"
        f"\t<description>{_esc(blog['tagline'])}</description>\n"
        f"\t<lastBuildDate>{_rss_date(post.published)}</lastBuildDate>\n"
        "\t<sy:updatePeriod>\n\thourly\t</sy:updatePeriod>\n"
        "\t<generator>https://wordpress.org/?v=6.5.3</generator>\n"
        + "".join(items) + "</channel>\n</rss>\n"
    )


def _atom_comments(writer: _Writer, blog: dict[str, str], post: _Post) -> str:
    entries = []
    last = post.published
    for author, suffix, moment, body in _comments(writer, post):
        last = moment
        entries.append(
            f"<entry><id>tag:blogger.com,1999:blog-{blog['blog_id']}.post-{suffix}</id>"
            f"<published>{_iso(moment)}</published><updated>{_iso(moment)}</updated>"
            f'<title type="text">{_esc(html.unescape(body[3:40]))}</title>'
            f'<content type="html">{_esc(body)}</content>'
            f'<link rel="alternate" type="text/html" '
            f'href="{post.link}?showComment={suffix}#c{suffix}" title=""/>'
            f"<author><name>{_esc(author)}</name></author>"
            f'<thr:in-reply-to ref="{post.guid}" href="{post.link}" '
            f'source="{BASE}{blog["feed_path"]}" type="text/html"/>'
            "</entry>\n"
        )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:thr="http://purl.org/syndication/thread/1.0">'
        f"<id>tag:blogger.com,1999:blog-{blog['blog_id']}.post{post.number}..comments</id>"
        f"<updated>{_iso(last)}</updated>"
        f'<title type="text">{_esc(post.title)}</title>'
        f'<link rel="self" type="application/atom+xml" href="{BASE}{post.comments_path}"/>'
        f'<link rel="alternate" type="text/html" href="{post.link}"/>'
        '<generator version="7.00" uri="http://www.blogger.com">Blogger</generator>\n'
        + "".join(entries) + "</feed>\n"
    )


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` posts over ``parts`` feeds, unevenly, at least 3 each."""
    weights = [rng.uniform(0.4, 1.6) for _ in range(parts)]
    scale = total / sum(weights)
    counts = [max(3, round(w * scale)) for w in weights]
    step = 0
    while sum(counts) != total:  # settle the rounding, one post at a time
        index = step % parts
        if sum(counts) > total and counts[index] > 3:
            counts[index] -= 1
        elif sum(counts) < total:
            counts[index] += 1
        step += 1
    return counts


def generate(out_dir: Path, *, feeds: int = 1000, posts: int = 25000, seed: int = 1,
             comment_share: float = 0.1, markup: str = "real",
             comment_feeds: str = "commented") -> CorpusStats:
    """Write the corpus under ``out_dir``; the same arguments give the same bytes.

    ``markup="light"`` writes the plain post markup of corpus version 3 (the
    same bytes); "real" dresses posts as WordPress, page builders and Blogger
    do (see WORDPRESS_STYLES). ``comment_feeds="every"`` names a comment feed
    for every post, an empty one where the post has no comments; every
    other byte stays as "commented" writes it.
    """
    if feeds < 1 or posts < 3 * feeds:
        raise ValueError("need at least one feed and three posts per feed")
    if markup not in MARKUP_CHOICES:
        raise ValueError(f"markup must be one of {', '.join(MARKUP_CHOICES)}")
    if comment_feeds not in COMMENT_FEED_CHOICES:
        raise ValueError(f"comment_feeds must be one of {', '.join(COMMENT_FEED_CHOICES)}")
    started = time.perf_counter()
    rng = random.Random(seed)
    (out_dir / "feeds").mkdir(parents=True, exist_ok=True)
    (out_dir / "comments").mkdir(parents=True, exist_ok=True)
    documents: dict[str, dict[str, str]] = {}
    feed_list: list[dict[str, str]] = []
    stats = CorpusStats(feeds=feeds, rss_feeds=0, atom_feeds=0, posts=0, comment_feeds=0,
                        comments=0, bytes=0, languages={"nl": 0, "de": 0, "en": 0},
                        empty_comment_feeds=0)
    post_no = 0
    for index, count in enumerate(_split(posts, feeds, rng)):
        blog_rng = random.Random(f"{seed}:{index}")
        language = blog_rng.choices(("nl", "de", "en"), weights=(4, 3, 3))[0]
        atom = blog_rng.random() < 0.4
        # Its own stream, so that "light" leaves every other byte as version 3 had it.
        markup_rng = random.Random(f"{seed}:{index}:markup")
        if markup == "light":
            style = "classic"
        elif atom:
            style = "blogger"
        else:
            names, weights = zip(*WORDPRESS_STYLES, strict=True)
            style = markup_rng.choices(names, weights=weights)[0]
        writer = _Writer(blog_rng, language, style, markup_rng)
        platform = _Platform()
        if markup != "light":  # its own stream again: version 4's posts stay as they were
            platform_rng = random.Random(f"{seed}:{index}:platform")
            jetpack = platform_rng.random() < 0.3
            platform = _Platform(
                jetpack=not atom and jetpack,
                site_icon=not atom and (jetpack or platform_rng.random() < 0.4),
                newline_first=not atom and platform_rng.random() < 0.05,
                blogger_profiles=atom)
        slug = f"b{index:04d}"
        name = (f"{blog_rng.choice(_TOPICS_WORDS).capitalize()} "
                f"{blog_rng.choice(_BLOG_WORDS).capitalize()} {index}")
        blog = {
            "slug": slug, "title": name, "tagline": writer.sentence(),
            "site": f"{BASE}/{slug}", "blog_id": str(10**17 + index * 7919),
            "feed_path": f"/{slug}/feeds/posts/default" if atom else f"/{slug}/feed/",
        }
        newest = EPOCH - timedelta(hours=blog_rng.randint(1, 24 * 20))
        blog_posts: list[_Post] = []
        moment = newest
        for _ in range(count):
            post_no += 1
            title = writer.title()
            words = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")
            path_slug = "-".join(part for part in words.split("-") if part)[:60]
            month = f"{moment.year}/{moment.month:02d}"
            link = (f"{BASE}/{slug}/{month}/{path_slug}.html" if atom
                    else f"{BASE}/{slug}/{month}/{path_slug}/")
            guid = (f"tag:blogger.com,1999:blog-{blog['blog_id']}.post-{post_no}" if atom
                    else f"{BASE}/{slug}/?p={post_no}")
            with_comments = blog_rng.random() < comment_share
            comments_path = None
            if with_comments or comment_feeds == "every":
                comments_path = (f"/{slug}/feeds/{post_no}/comments/default" if atom
                                 else f"/{slug}/{month}/{path_slug}/feed/")
            blog_posts.append(_Post(
                number=post_no, guid=guid, link=link, title=title,
                author=f"{blog_rng.choice(_FIRST)} {blog_rng.choice(_LAST)}",
                published=moment,
                categories=blog_rng.sample(_CATEGORIES, blog_rng.randint(1, 3)),
                body=writer.post_html(blog_rng.randint(2000, 6000), blog["site"], post_no),
                excerpt=writer.excerpt(), comments_path=comments_path,
                comment_count=blog_rng.randint(1, 8) if with_comments else 0,
            ))
            moment -= timedelta(minutes=blog_rng.randint(60, 60 * 24 * 9))
        document = (_atom_feed if atom else _rss_feed)(blog, blog_posts, language, platform)
        data = document.encode("utf-8")
        file = f"feeds/{slug}.xml"
        (out_dir / file).write_bytes(data)
        stats.bytes += len(data)
        documents[blog["feed_path"]] = {
            "file": file, "content_type": ATOM_TYPE if atom else RSS_TYPE,
            "last_modified": _rss_date(newest),
        }
        feed_list.append({"path": blog["feed_path"], "name": name, "language": language,
                          "format": "atom" if atom else "rss", "markup": style,
                          "platform": ",".join(flag.name for flag in fields(platform)
                                               if getattr(platform, flag.name)),
                          "posts": str(count)})
        stats.posts += count
        stats.languages[language] += count
        if atom:
            stats.atom_feeds += 1
        else:
            stats.rss_feeds += 1
        with_feed = [post for post in blog_posts if post.comments_path]
        if with_feed:
            (out_dir / "comments" / slug).mkdir(exist_ok=True)
        for post in with_feed:
            assert post.comments_path is not None
            # An empty feed draws nothing from the writer's stream.
            comment_doc = (_atom_comments if atom else _rss_comments)(writer, blog, post)
            data = comment_doc.encode("utf-8")
            file = f"comments/{slug}/p{post.number:06d}.xml"
            (out_dir / file).write_bytes(data)
            stats.bytes += len(data)
            if post.comment_count:
                stats.comment_feeds += 1
            else:
                stats.empty_comment_feeds += 1
            stats.comments += post.comment_count
            documents[post.comments_path] = {
                "file": file, "content_type": ATOM_TYPE if atom else RSS_TYPE,
                "last_modified": _rss_date(post.published + timedelta(days=2)),
                "comments": str(post.comment_count),
            }
    stats.seconds = round(time.perf_counter() - started, 2)
    manifest = {
        "_comment": "URL path -> file; {{BASE}} in files is the serving origin. "
                    "Written by bench/perf_corpus.py.",
        "documents": documents,
        "corpus": {
            "arguments": {"feeds": feeds, "posts": posts, "seed": seed,
                          "comment_share": comment_share, "markup": markup,
                          "comment_feeds": comment_feeds, "version": CORPUS_VERSION},
            "stats": asdict(stats),
            "feeds": feed_list,
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False),
                                           encoding="utf-8")
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=25000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--comment-share", type=float, default=0.1,
                        help="share of posts with a comment feed (default 0.1)")
    parser.add_argument("--markup", choices=MARKUP_CHOICES, default="real",
                        help="post markup: as blogging platforms write it (real, the "
                             "default) or the plain markup of corpus version 3 (light)")
    parser.add_argument("--comment-feeds", choices=COMMENT_FEED_CHOICES, default="commented",
                        help="which posts name a comment feed: those with comments (the "
                             "default) or every post, as WordPress and Blogger do")
    args = parser.parse_args(argv)
    stats = generate(args.out_dir, feeds=args.feeds, posts=args.posts, seed=args.seed,
                     comment_share=args.comment_share, markup=args.markup,
                     comment_feeds=args.comment_feeds)
    print(f"{stats.feeds} feeds ({stats.rss_feeds} RSS, {stats.atom_feeds} Atom), "
          f"{stats.posts} posts {stats.languages}, {stats.comment_feeds} comment feeds with "
          f"{stats.comments} comments ({stats.empty_comment_feeds} empty comment feeds), "
          f"{stats.bytes / 1e6:.1f} MB in {stats.seconds:.1f} s "
          f"→ {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
