"""A labelled multilingual corpus of marketing-blog feeds, for measuring dedupe and languages.

``python bench/dedupe_corpus.py OUT_DIR --feeds 300 --seed 1`` writes several
hundred RSS 2.0 and Atom feeds of Dutch, German and English marketing blogs
(with per-post comment feeds), written offline from the vocabularies and
sentence templates below, and plants what an aggregator must recognise:

- **crosspost**: the same article on another blog (its own guid and link, a
  later date, maybe a "Gastblog:" title prefix, a syndication footer, a guest
  intro line, another excerpt length, or only a summary);
- **url_variant**: the same article linked through another spelling of its
  URL (utm/fbclid, http/https, www./m., trailing slash, index.html,
  feedproxy, AMP, percent-encoding, a fragment), from planet-style digest
  feeds and FeedBurner mirrors;
- **light_edit**: a copy elsewhere with one sentence changed or added;
- **repeat**: the same article twice in its own feed under another guid (and
  items repeated verbatim, guid and all, which must stay one appearance);
- **related**: a different article on the same subject, with the same people
  and brands and a similar title, which must never be merged.

Next to the feeds: ``manifest.json`` (URL path → file and content type, the
format tests/blogserver.py serves) and ``labels.json`` (for every feed path
and guid: the article, the planted kind, the language, the text length, and
which copy is the original). Generation is deterministic for a given seed.
bench/score_dedupe.py runs the aggregator over the corpus and scores it.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

__all__ = [
    "KINDS",
    "LANGUAGES",
    "Corpus",
    "generate",
    "main",
    "shingle_jaccard",
]

LANGUAGES = ("nl", "de", "en")
#: Planted kinds, as labels.json names them.
KINDS = ("original", "crosspost", "url_variant", "light_edit", "repeat", "related")
#: The placeholder tests/blogserver.py replaces with http://127.0.0.1:PORT.
BASE = "{{BASE}}"
RSS_TYPE = "application/rss+xml; charset=UTF-8"
ATOM_TYPE = "application/atom+xml; charset=UTF-8"
#: Posts are dated within two years from here (old enough never to be "future").
EPOCH = datetime(2012, 1, 2, 8, 0, tzinfo=UTC)

# =========================================================================== vocabularies
#
# Per language: plural subjects and the predicates that complete them (so
# that sentences combine without breaking Dutch or German word order), whole
# sentences, subordinate "findings" for survey sentences, and per subject
# topic its own sentences, tips and title templates. Slots in {braces} are
# filled from the article's "story" (its people, brands, city, event) so that
# two articles drawing on the same template still read differently.

TOPIC_KEYS = (
    "social-media", "brand-communities", "content-marketing", "seo", "email",
    "influencers", "open-source-marketing", "consumer-generated-media",
)


@dataclass(frozen=True, slots=True)
class Topic:
    #: The subject as it reads inside a sentence ("contentmarketing").
    name: str
    #: As a category label in the feed.
    category: str
    sentences: tuple[str, ...]
    tips: tuple[str, ...]
    titles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    subjects: tuple[str, ...]
    predicates: tuple[str, ...]
    sentences: tuple[str, ...]
    intros: tuple[str, ...]
    outros: tuple[str, ...]
    survey: str
    findings: tuple[str, ...]
    quote: str
    tips_intro: str
    headings: tuple[str, ...]
    topics: dict[str, Topic]
    audiences: tuple[str, ...]
    persons: tuple[str, ...]
    brands: tuple[str, ...]
    cities: tuple[str, ...]
    events: tuple[str, ...]
    orgs: tuple[str, ...]
    magazines: tuple[str, ...]
    #: Title templates for any subject ({Topic} is the subject, capitalised).
    titles: tuple[str, ...]
    #: "Gastblog: " and the like, for cross-posts.
    guest_prefixes: tuple[str, ...]
    #: Syndication footers; {blog} and {link} are the original's.
    footers: tuple[str, ...]
    guest_intros: tuple[str, ...]
    #: The footer Yoast-style plugins add to a blog's own feed.
    feed_footer: str
    read_more: str
    #: One-sentence changes for light edits ("Update: …").
    edits: tuple[str, ...]
    comments: tuple[str, ...]
    comment_feed_title: str
    blog_words: tuple[tuple[str, ...], tuple[str, ...]]
    tld: str
    digest_title: str
    #: How a post in this language opens with an English {quote}; "" for English.
    english_opening: str = ""


NL = Language(
    code="nl",
    subjects=(
        "Veel marketeers", "De meeste merken", "Kleine bureaus in {city}", "Merken als {brand}",
        "Steeds meer organisaties", "Onze eigen klanten", "De collega's van {brand}",
        "Communitymanagers", "Webwinkels", "Traditionele reclamebureaus", "Jonge ondernemers",
        "Grote adverteerders", "Marketingafdelingen", "De deelnemers aan {event}", "Bloggers",
        "Zelfs kleine bedrijven", "Bestuurders", "Woordvoerders",
    ),
    predicates=(
        "zien {platform} nog altijd als een gratis reclamezuil.",
        "onderschatten hoeveel tijd een goede nieuwsbrief kost.",
        "praten liever over bereik dan over wat hun {audience} werkelijk nodig hebben.",
        "hebben geen idee wat hun investering in {topic} oplevert.",
        "meten vooral wat makkelijk te meten is, en dat is zelden wat ertoe doet.",
        "durven de controle over hun merk nog niet los te laten.",
        "leren het meest van de reacties die ze liever niet hadden gekregen.",
        "merken dat een eerlijk antwoord meer oplevert dan een glad persbericht.",
        "besteden nog steeds het grootste deel van hun budget aan advertenties.",
        "kijken met een mengeling van nieuwsgierigheid en angst naar {platform}.",
        "maken de fout om via elk kanaal precies hetzelfde bericht te sturen.",
        "zouden meer moeten luisteren en minder moeten zenden.",
        "beginnen aan {topic} zonder doel, planning of eigenaar.",
        "hebben inmiddels een vaste redactie voor hun eigen kanalen.",
        "stoppen na een paar maanden, precies op het moment dat het begint te werken.",
        "vragen mij regelmatig hoe ze {tool} het beste kunnen inzetten.",
        "vergeten dat achter elk profiel een echt mens zit.",
        "zetten {topic} in als campagne, terwijl het een doorlopend gesprek is.",
        "weten precies welke onderwerpen hun {audience} bezighouden.",
        "worden pas wakker als er een klacht over hun product rondgaat.",
        "laten de interactie over aan een stagiair en verbazen zich dan over het resultaat.",
        "winnen vertrouwen niet met slogans maar met gedrag.",
        "hoeven echt niet op elk platform aanwezig te zijn.",
        "schrijven nog veel te vaak over zichzelf en te weinig over hun klanten.",
        "delen hun kennis gratis en winnen daarmee juist nieuwe opdrachten.",
        "hebben het afgelopen jaar flink geïnvesteerd in video.",
        "zoeken manieren om hun {audience} te betrekken bij de ontwikkeling van producten.",
        "combineren {topic} steeds vaker met klantenservice.",
        "krijgen dankzij {tool} eindelijk inzicht in wat wel en niet werkt.",
        "publiceren gemiddeld {small} keer per week een nieuw artikel.",
        "hebben last van interne regels die elke spontane reactie onmogelijk maken.",
        "vinden het moeilijk om kritiek in het openbaar te beantwoorden.",
        "gebruiken hun website nog steeds als digitale folder.",
        "nemen de vragen van hun {audience} mee in de planning van het volgende kwartaal.",
    ),
    sentences=(
        "Het klinkt eenvoudig, maar in de praktijk gaat het vaak mis.",
        "Dat vraagt om een andere manier van denken over {topic}.",
        "De vraag is niet óf je eraan moet beginnen, maar hoe.",
        "Een goed voorbeeld daarvan is {brand}.",
        "Bij {brand} hebben ze dat al in {year} begrepen.",
        "Ik ben benieuwd hoe jullie daar tegenaan kijken.",
        "Het mooie is dat je er geen groot budget voor nodig hebt.",
        "Wie zijn {audience} serieus neemt, krijgt daar veel voor terug.",
        "Toch blijft het lastig om de resultaten te vertalen naar omzet.",
        "De tijd dat een merk alleen zelf het verhaal vertelde, ligt definitief achter ons.",
        "Meten is weten, maar dan moet je wel weten wat je meet.",
        "Dat is geen technisch probleem, maar een organisatorisch probleem.",
        "Het gesprek over jouw merk wordt hoe dan ook gevoerd, met of zonder jou.",
        "Begin klein, leer snel en schaal pas op als je weet wat werkt.",
        "In {city} zag ik onlangs een mooi voorbeeld van hoe het wél kan.",
        "Volgens {person} is het grootste obstakel niet de techniek maar de cultuur.",
        "Daar zit volgens mij de kern van het verhaal.",
        "Wat {brand} goed doet, is consequent reageren op elke vraag.",
        "Natuurlijk zijn er ook kritische geluiden.",
        "Zo'n aanpak vraagt wel om geduld, en dat is precies wat veel organisaties missen.",
        "Het budget voor {topic} groeide vorig jaar met {percent} procent.",
        "Ik schreef er eerder al over op dit blog.",
        "De cijfers spreken voor zich.",
        "Wie daar vandaag mee begint, heeft over een jaar een flinke voorsprong.",
        "Dat zie je ook terug in de reacties op {platform}.",
        "Vorige week sprak ik {person} op {event} in {city}.",
        "{person} vatte het tijdens {event} treffend samen: zonder vertrouwen geen gesprek.",
        "Het team van {brand} bestaat inmiddels uit {small} mensen die niets anders doen.",
        "Daarmee is niet gezegd dat de klassieke reclame verdwijnt.",
        "Het verschil zit hem vooral in de toon.",
        "Een klant die zich gehoord voelt, komt terug.",
        "Ook de juridische afdeling moet daarin mee, en dat gaat niet vanzelf.",
    ),
    intros=(
        "Deze maand verscheen in {magazine} een interessant artikel over {topic}.",
        "Al weer even geleden was ik aanwezig bij {event} in {city}.",
        "Regelmatig krijg ik de vraag wat {topic} nu eigenlijk oplevert.",
        "Wie de afgelopen weken {platform} heeft gevolgd, weet dat {topic} weer volop in de "
        "belangstelling staat.",
        "{person} stuurde me gisteren een simpele vraag: waarom werkt {topic} bij {brand} wel "
        "en bij ons niet?",
        "Het is een discussie die ik de laatste tijd vaak voer met klanten en collega's.",
        "Op {event} ging het dit jaar opvallend vaak over {topic}.",
    ),
    outros=(
        "Kortom: {topic} is geen trucje, maar een manier van werken.",
        "Wat zijn jullie ervaringen? Laat het weten in de reacties.",
        "Ik ben benieuwd of we hier over een jaar nog steeds over praten.",
        "Meer weten? {person} geeft op {event} een workshop over dit onderwerp.",
        "Ik houd jullie op de hoogte van hoe het verder gaat bij {brand}.",
    ),
    survey="Uit onderzoek van {org} onder {big} {audience} blijkt dat {percent} procent {finding}.",
    findings=(
        "wel eens een merk volgt op {platform}",
        "liever een blog leest dan een advertentie bekijkt",
        "een nieuwsbrief snel weer opzegt als die niet relevant is",
        "meer vertrouwt op reviews van andere klanten dan op reclame",
        "nog nooit een reactie van een bedrijf heeft gekregen",
        "eerst online zoekt voordat er iets gekocht wordt",
        "een merk aanraadt aan vrienden na een goede ervaring met de klantenservice",
        "video belangrijker vindt dan tekst",
    ),
    quote="\u201c{sentence}\u201d, zegt {person}.",
    tips_intro="{small} tips voor wie morgen wil beginnen:",
    headings=(
        "De praktijk", "Waarom het misgaat", "Wat werkt wel?", "Drie lessen",
        "Luisteren voor zenden", "De rol van de marketeer", "Meten en bijsturen", "Tot slot",
        "Hoe begin je?", "Een voorbeeld uit {city}", "De cijfers", "En nu?",
    ),
    topics={
        "social-media": Topic(
            "social media", "Social media",
            (
                "Op {platform} draait alles om snelheid, en dat past slecht bij een "
                "goedkeuringsproces van drie dagen.",
                "Een tweet is sneller geschreven dan een persbericht, maar hij blijft net zo lang "
                "vindbaar.",
                "Het aantal volgers zegt weinig; het aantal gesprekken zegt veel meer.",
                "Sociale netwerken zijn geen kanaal, het zijn plekken waar mensen wonen.",
                "Wie op {platform} alleen aanbiedingen deelt, raakt zijn volgers snel weer kwijt.",
                "Een webcare-team dat 's avonds en in het weekend bereikbaar is, maakt het "
                "verschil.",
                "De algoritmes van {platform} belonen berichten waar mensen op reageren.",
            ),
            (
                "Kies één platform en doe dat goed.", "Reageer binnen een uur op vragen.",
                "Deel ook werk van anderen.", "Spreek in de eerste persoon.",
                "Maak vooraf afspraken over wie wat beantwoordt.",
            ),
            (
                "Social media bij {brand}: wat wij ervan leerden",
                "{n} misverstanden over social media",
                "Waarom {platform} geen reclamezuil is",
                "Social media in {year}: van zenden naar luisteren",
            ),
        ),
        "brand-communities": Topic(
            "merkgemeenschappen", "Brand communities",
            (
                "Een merkgemeenschap ontstaat rond een gedeelde passie, niet rond een logo.",
                "De fans van {brand} organiseren hun eigen bijeenkomsten, zonder tussenkomst van "
                "het merk.",
                "Leden van een community zijn evangelisten, maar geen ambassadeurs in dienst van "
                "de onderneming.",
                "Zie jezelf als gastheer, niet als bewaker van het merk.",
                "Een forum zonder moderator verandert binnen een maand in een klaagmuur.",
                "De meest actieve leden verdienen erkenning, en dat hoeft geen geld te zijn.",
                "Wie de community gebruikt als verkoopkanaal, verliest haar snel.",
            ),
            (
                "Zoek de mensen die al over je merk praten.", "Geef leden echte invloed.",
                "Organiseer af en toe een bijeenkomst in het echt.",
                "Zorg dat er altijd iemand van het merk meeleest.",
                "Bedank de actiefste leden persoonlijk.",
            ),
            (
                "Brand communities: gastheer in plaats van bewaker",
                "Wat {brand} ons leert over merkgemeenschappen",
                "De fans van {brand} nemen het heft in handen",
                "{n} lessen uit de community van {brand}",
            ),
        ),
        "content-marketing": Topic(
            "contentmarketing", "Contentmarketing",
            (
                "Goede content beantwoordt een vraag die je klant al had.",
                "Een redactionele kalender voorkomt dat je elke maandag met een leeg scherm "
                "begint.",
                "Niet elk artikel hoeft viraal te gaan; het moet vooral gevonden worden door de "
                "juiste mensen.",
                "Het hergebruiken van één goed verhaal in vijf vormen is efficiënter dan vijf "
                "middelmatige verhalen.",
                "Een whitepaper achter een formulier levert leads op, maar kost je lezers.",
                "De beste onderwerpen komen vaak van de klantenservice.",
                "Schrijf voor mensen, niet voor je eigen directie.",
            ),
            (
                "Maak een lijst van de tien vaakst gestelde vragen.",
                "Plan een vaste publicatiedag.", "Laat collega's meeschrijven.",
                "Meet hoe lang mensen echt lezen.", "Gooi weg wat niemand leest.",
            ),
            (
                "Contentmarketing zonder plan is ruis",
                "{n} vragen voor je contentmarketing in {year}",
                "Waarom contentmarketing bij {brand} wel werkt",
                "Van advertentie naar artikel: contentmarketing in de praktijk",
            ),
        ),
        "seo": Topic(
            "zoekmachineoptimalisatie", "SEO",
            (
                "Zoekmachines belonen pagina's die een vraag beter beantwoorden dan de rest.",
                "Een titel vol zoekwoorden leest niemand graag, ook Google niet.",
                "Links van andere sites blijven een van de sterkste signalen.",
                "Een trage website kost je bezoekers lang voordat het je posities kost.",
                "Lokale vindbaarheid begint bij een volledig en correct bedrijfsprofiel.",
                "Wie elke maand dezelfde teksten herschrijft voor een ander zoekwoord, maakt "
                "zijn eigen site onleesbaar.",
                "De zoekresultaten voor {city} zien er op een telefoon heel anders uit dan op "
                "een laptop.",
            ),
            (
                "Schrijf eerst voor de lezer.", "Zorg voor een snelle mobiele site.",
                "Gebruik duidelijke tussenkoppen.", "Verwijs naar je eigen beste artikelen.",
                "Controleer maandelijks je gebroken links.",
            ),
            (
                "SEO in {year}: wat er echt toe doet",
                "{n} fouten die je vindbaarheid kosten",
                "Zoekmachineoptimalisatie voor kleine webwinkels",
                "Hoe {brand} bovenaan kwam zonder trucs",
            ),
        ),
        "email": Topic(
            "e-mailmarketing", "E-mailmarketing",
            (
                "Een nieuwsbrief die elke week hetzelfde aanbod herhaalt, belandt snel in de "
                "prullenbak.",
                "De onderwerpregel bepaalt of je mail wordt geopend, de eerste zin of hij wordt "
                "gelezen.",
                "Een kleinere lijst van betrokken abonnees is meer waard dan een grote lijst "
                "die niemand leest.",
                "Automatische mails na een aankoop worden verrassend goed gelezen.",
                "Wie zonder toestemming mailt, beschadigt zijn merk en overtreedt de wet.",
                "Het openingspercentage van de nieuwsbrief van {brand} ligt rond de {percent} "
                "procent.",
                "Een persoonlijke afzender werkt beter dan een noreply-adres.",
            ),
            (
                "Vraag alleen om wat je echt nodig hebt.", "Test je onderwerpregels.",
                "Maak afmelden eenvoudig.", "Schoon je lijst elk kwartaal op.",
                "Stuur minder, maar beter.",
            ),
            (
                "De nieuwsbrief is niet dood",
                "{n} lessen uit {year} jaar e-mailmarketing",
                "Waarom abonnees van {brand} de nieuwsbrief wél lezen",
                "E-mailmarketing: minder sturen, meer zeggen",
            ),
        ),
        "influencers": Topic(
            "influencermarketing", "Influencers",
            (
                "Een influencer met duizend trouwe volgers kan meer betekenen dan een ster met "
                "een miljoen.",
                "Betaalde samenwerkingen moeten herkenbaar zijn, anders verspeel je vertrouwen.",
                "Bloggers willen niet betaald worden om iets aardigs te zeggen; ze willen als "
                "eerste iets weten.",
                "De beste samenwerkingen ontstaan als de maker vrij is om zijn eigen verhaal te "
                "vertellen.",
                "Een productpakket sturen zonder begeleidende uitleg is weggegooid geld.",
                "Wie invloed koopt, koopt ook de risico's van andermans reputatie.",
                "Bij {brand} werken ze alleen nog met makers die het product zelf al gebruikten.",
            ),
            (
                "Kijk naar betrokkenheid, niet naar volgers.", "Maak afspraken over openheid.",
                "Geef makers creatieve vrijheid.", "Bouw aan een relatie, niet aan een campagne.",
                "Lees eerst een maand mee.",
            ),
            (
                "Influencers: vertrouwen is niet te koop",
                "{n} regels voor samenwerken met bloggers",
                "Wat {brand} leerde van zijn eerste influencercampagne",
                "Influencermarketing voorbij de hype",
            ),
        ),
        "open-source-marketing": Topic(
            "open source marketing", "Open source marketing",
            (
                "Geef consumenten toegang tot de broncode van je merk en betrek ze bij het "
                "merkbouwen.",
                "Het merk is niet van jou, maar van je klant.",
                "Leg het berichtenbombardement eens stil om ook te kunnen luisteren.",
                "Open source maakt zijn intrede in de klassieke economie, ook buiten de "
                "softwarewereld.",
                "Gebruikers ontwikkelen en promoten in toenemende mate zelf producten.",
                "In de rechtzaal heb je het auteursrecht aan je kant, maar in de markt verlies "
                "je het van de massa.",
                "Zie de nieuwe realiteit niet als een bedreiging, maar als een kans.",
            ),
            (
                "Deel je merk met je fans.", "Ontsla de filteraars.", "Je klant is niet dom.",
                "Volg de fora en de blogs.", "Stel je open op.",
            ),
            (
                "Open source marketing: het merk als broncode",
                "Dringt open source door in marketing?",
                "De marketeer als facilitator",
                "{n} adviezen uit het open source marketing manifest",
            ),
        ),
        "consumer-generated-media": Topic(
            "consumer generated media", "Consumer generated media",
            (
                "Consumenten maken hun eigen reclames, en soms zijn die beter dan het origineel.",
                "Blogs en fora bieden consumenten een platform om erkenning te vragen voor hun "
                "ervaringen.",
                "Een filmpje van een tevreden klant overtuigt meer dan een dure commercial.",
                "Extremisering van standpunten wordt door sommige sites gestimuleerd.",
                "De consument praat terug, en hij doet dat in het openbaar.",
                "Reviews op {platform} beïnvloeden de aankoop meer dan de website van het merk "
                "zelf.",
                "Respecteer de reacties, ook als ze negatief zijn, en laat zien wat je ermee doet.",
            ),
            (
                "Lees wat klanten over je schrijven.", "Bedank mensen voor hun review.",
                "Geef makers materiaal om mee te werken.",
                "Reageer op kritiek zonder te verdedigen.", "Deel het beste werk van je fans.",
            ),
            (
                "Help, de consument praat terug",
                "Consumer generated media: de klant als maker",
                "Wat de fans van {brand} zelf maakten",
                "{n} voorbeelden van consumenten die het merk overnamen",
            ),
        ),
    },
    audiences=("klanten", "consumenten", "lezers", "volgers", "abonnees", "fans"),
    persons=(
        "Marco Derksen", "Femke van Dijk", "Jeroen Bakker", "Sanne de Vries", "Erik Hoekstra",
        "Lotte Jansen", "Bas Visser", "Anouk Smit", "Tim Mulder", "Eva de Boer",
        "Ruud Peters", "Marieke Kok", "Joost Vermeulen", "Ilse van Leeuwen",
    ),
    brands=(
        "Albert Heijn", "Bol.com", "Coolblue", "HEMA", "Philips", "Rabobank", "KLM",
        "Heineken", "Blokker", "Gazelle", "Tony's Chocolonely", "Vodafone", "de NS", "Jumbo",
    ),
    cities=("Amsterdam", "Utrecht", "Rotterdam", "Arnhem", "Eindhoven", "Groningen", "Zwolle"),
    events=(
        "het Social Media Café", "de Marketing Tech Dag", "de Dag van de Contentmarketing",
        "het Nationaal Marketingcongres", "Winkwaves+1", "de Webcare Awards",
    ),
    orgs=("Motivaction", "Newcom Research", "GfK", "Multiscope", "het Nyenrode Instituut"),
    magazines=("Emerce", "Adformatie", "het Tijdschrift voor Marketing", "het FD",
               "Marketingtribune"),
    titles=(
        "{Topic}: {n} lessen van {brand}", "Wat ik op {event} leerde over {topic}",
        "{Topic} bij {brand}: een tussenstand", "Waarom {audience} niet wakker liggen van {topic}",
        "{Topic} in {city}: een verslag", "{person} over {topic} en {platform}",
        "De staat van {topic} in {year}", "{n} vragen over {topic} die je jezelf moet stellen",
        "Hoe {brand} {topic} aanpakt", "{Topic} en {platform}: hoe verder?",
    ),
    guest_prefixes=("Gastblog: ", "Gastblog | ", "[Gastblog] "),
    footers=(
        "Dit artikel verscheen eerder op {blog}.",
        "Dit artikel verscheen eerder op <a href=\"{link}\">{blog}</a>.",
        "Eerder gepubliceerd op {blog}. Overgenomen met toestemming van de auteur.",
    ),
    guest_intros=(
        "Dit is een gastblog van {person}.",
        "{person} schrijft regelmatig over {topic} en mocht deze week bij ons de pen voeren.",
    ),
    feed_footer="Het bericht {title} verscheen eerst op {blog}.",
    read_more="Lees verder",
    edits=(
        "Update: inmiddels heeft ook {brand} gereageerd.",
        "Aanvulling: de cijfers van {org} zijn intussen bijgewerkt.",
        "Met dank aan {person} voor de tip.",
        "Correctie: het onderzoek werd gehouden onder {big} mensen.",
    ),
    comments=(
        "Mooi stuk, herkenbaar verhaal.", "Ik denk dat je hier de vinger op de zere plek legt.",
        "Bij ons op kantoor hebben we precies dezelfde discussie gehad.",
        "Toch ben ik het niet helemaal met je eens.",
        "Het is vooral een kwestie van durven.", "Dank voor het delen van deze voorbeelden.",
        "Hebben jullie ook cijfers over het effect op de omzet?",
        "Goed punt over het luisteren, dat wordt vaak vergeten.",
        "Wij zijn er vorig jaar mee begonnen en de eerste resultaten zijn goed.",
        "Interessant, maar werkt dit ook voor kleine bedrijven?",
    ),
    comment_feed_title="Reacties op: {title}",
    blog_words=(
        ("merk", "klant", "praat", "web", "zoek", "media", "markt", "buzz", "net", "pixel",
         "inhoud", "dialoog"),
        ("praat", "facts", "blik", "kracht", "zaken", "lab", "werk", "plein", "zicht",
         "taal", "kompas", "punt"),
    ),
    tld="nl",
    digest_title="Planet Marketing NL",
    english_opening="\u201c{quote}\u201d Met die woorden opende {person} de middag op {event}.",
)

DE = Language(
    code="de",
    subjects=(
        "Viele Marketer", "Die meisten Marken", "Kleine Agenturen in {city}",
        "Marken wie {brand}", "Immer mehr Unternehmen", "Unsere eigenen Kunden",
        "Die Kollegen von {brand}", "Community-Manager", "Onlinehändler",
        "Klassische Werbeagenturen", "Junge Gründer", "Große Werbekunden",
        "Marketingabteilungen", "Die Teilnehmer der {event}", "Blogger",
        "Selbst kleine Firmen", "Vorstände", "Pressesprecher",
    ),
    predicates=(
        "sehen {platform} noch immer als kostenlose Plakatwand.",
        "unterschätzen, wie viel Arbeit ein guter Newsletter macht.",
        "reden lieber über Reichweite als über das, was ihre {audience} wirklich brauchen.",
        "haben keine Ahnung, was ihnen {topic} eigentlich bringt.",
        "messen vor allem, was sich leicht messen lässt, und das ist selten das Wichtige.",
        "trauen sich noch nicht, die Kontrolle über ihre Marke abzugeben.",
        "lernen am meisten aus den Reaktionen, die sie lieber nicht bekommen hätten.",
        "merken, dass eine ehrliche Antwort mehr bringt als eine glatte Pressemitteilung.",
        "geben immer noch den größten Teil ihres Budgets für Anzeigen aus.",
        "schauen mit einer Mischung aus Neugier und Angst auf {platform}.",
        "machen den Fehler, über jeden Kanal genau dieselbe Botschaft zu schicken.",
        "sollten mehr zuhören und weniger senden.",
        "fangen mit {topic} an, ohne Ziel, Plan oder Verantwortlichen.",
        "haben inzwischen eine feste Redaktion für ihre eigenen Kanäle.",
        "hören nach ein paar Monaten auf, genau dann, wenn es zu wirken beginnt.",
        "fragen mich regelmäßig, wie sie {tool} am besten einsetzen können.",
        "vergessen, dass hinter jedem Profil ein echter Mensch steht.",
        "setzen {topic} als Kampagne ein, obwohl es ein fortlaufendes Gespräch ist.",
        "wissen genau, welche Themen ihre {audience} beschäftigen.",
        "wachen erst auf, wenn eine Beschwerde über ihr Produkt die Runde macht.",
        "überlassen die Kommunikation einem Praktikanten und wundern sich über das Ergebnis.",
        "gewinnen Vertrauen nicht mit Slogans, sondern mit ihrem Verhalten.",
        "müssen wirklich nicht auf jeder Plattform vertreten sein.",
        "schreiben noch viel zu oft über sich selbst und zu selten über ihre Kunden.",
        "teilen ihr Wissen kostenlos und gewinnen gerade dadurch neue Aufträge.",
        "haben im letzten Jahr kräftig in Videos investiert.",
        "suchen nach Wegen, ihre {audience} an der Entwicklung neuer Produkte zu beteiligen.",
        "verbinden {topic} immer öfter mit dem Kundenservice.",
        "bekommen dank {tool} endlich einen Überblick darüber, was funktioniert.",
        "veröffentlichen im Durchschnitt {small} neue Beiträge pro Woche.",
        "leiden unter internen Regeln, die jede spontane Antwort unmöglich machen.",
        "tun sich schwer damit, öffentliche Kritik zu beantworten.",
        "benutzen ihre Website immer noch als digitalen Prospekt.",
        "nehmen die Fragen ihrer {audience} in die Planung des nächsten Quartals auf.",
    ),
    sentences=(
        "Das klingt einfach, aber in der Praxis geht es oft schief.",
        "Das verlangt eine andere Art, über {topic} nachzudenken.",
        "Die Frage ist nicht, ob man damit anfangen sollte, sondern wie.",
        "Ein gutes Beispiel dafür ist {brand}.",
        "Bei {brand} hat man das schon {year} verstanden.",
        "Ich bin gespannt, wie ihr das seht.",
        "Das Schöne daran ist, dass man dafür kein großes Budget braucht.",
        "Wer seine {audience} ernst nimmt, bekommt viel zurück.",
        "Trotzdem bleibt es schwierig, die Ergebnisse in Umsatz zu übersetzen.",
        "Die Zeit, in der eine Marke ihre Geschichte allein erzählte, ist endgültig vorbei.",
        "Messen ist gut, aber man muss wissen, was man misst.",
        "Das ist kein technisches Problem, sondern ein organisatorisches.",
        "Das Gespräch über deine Marke findet so oder so statt, mit dir oder ohne dich.",
        "Fang klein an, lerne schnell und wachse erst, wenn du weißt, was funktioniert.",
        "In {city} habe ich neulich ein schönes Beispiel gesehen, wie es besser geht.",
        "Laut {person} ist das größte Hindernis nicht die Technik, sondern die Kultur.",
        "Darin liegt für mich der Kern der Sache.",
        "Was {brand} gut macht: Jede Frage bekommt eine Antwort.",
        "Natürlich gibt es auch kritische Stimmen.",
        "So ein Vorgehen braucht Geduld, und genau die fehlt vielen Unternehmen.",
        "Das Budget für {topic} ist im letzten Jahr um {percent} Prozent gewachsen.",
        "Ich habe darüber schon früher in diesem Blog geschrieben.",
        "Die Zahlen sprechen für sich.",
        "Wer heute damit anfängt, hat in einem Jahr einen deutlichen Vorsprung.",
        "Das sieht man auch an den Reaktionen auf {platform}.",
        "Letzte Woche habe ich {person} auf der {event} in {city} getroffen.",
        "{person} hat es auf der {event} treffend zusammengefasst: ohne Vertrauen kein Gespräch.",
        "Das Team von {brand} besteht inzwischen aus {small} Leuten, die nichts anderes tun.",
        "Damit ist nicht gesagt, dass die klassische Werbung verschwindet.",
        "Der Unterschied liegt vor allem im Ton.",
        "Ein Kunde, der sich gehört fühlt, kommt wieder.",
        "Auch die Rechtsabteilung muss dabei mitziehen, und das geht nicht von allein.",
    ),
    intros=(
        "Diesen Monat erschien in {magazine} ein interessanter Artikel über {topic}.",
        "Vor einiger Zeit war ich auf der {event} in {city}.",
        "Immer wieder werde ich gefragt, was {topic} eigentlich bringt.",
        "Wer in den letzten Wochen {platform} verfolgt hat, weiß, dass {topic} wieder in "
        "aller Munde ist.",
        "{person} hat mir gestern eine einfache Frage gestellt: Warum funktioniert {topic} "
        "bei {brand} und bei uns nicht?",
        "Über dieses Thema diskutiere ich in letzter Zeit oft mit Kunden und Kollegen.",
        "Auf der {event} ging es dieses Jahr auffällig oft um {topic}.",
    ),
    outros=(
        "Kurz gesagt: {topic} ist kein Trick, sondern eine Arbeitsweise.",
        "Welche Erfahrungen habt ihr gemacht? Schreibt es in die Kommentare.",
        "Ich bin gespannt, ob wir in einem Jahr immer noch darüber reden.",
        "Mehr dazu? {person} gibt auf der {event} einen Workshop zu diesem Thema.",
        "Ich halte euch auf dem Laufenden, wie es bei {brand} weitergeht.",
    ),
    survey=(
        "Eine Umfrage von {org} unter {big} {audience} zeigt, dass {percent} Prozent "
        "{finding}."
    ),
    findings=(
        "schon einmal einer Marke auf {platform} gefolgt sind",
        "lieber einen Blog lesen als eine Anzeige anschauen",
        "einen Newsletter schnell wieder abbestellen, wenn er nicht relevant ist",
        "den Bewertungen anderer Kunden mehr vertrauen als der Werbung",
        "noch nie eine Antwort von einem Unternehmen bekommen haben",
        "sich zuerst online informieren, bevor sie etwas kaufen",
        "eine Marke nach einem guten Erlebnis mit dem Kundenservice weiterempfehlen",
        "Videos wichtiger finden als Texte",
    ),
    quote="\u201e{sentence}\u201c, sagt {person}.",
    tips_intro="{small} Tipps für alle, die morgen anfangen wollen:",
    headings=(
        "Die Praxis", "Warum es schiefgeht", "Was funktioniert?", "Drei Lektionen",
        "Zuhören statt senden", "Die Rolle des Marketings", "Messen und nachsteuern", "Zum Schluss",
        "Wie fängt man an?", "Ein Beispiel aus {city}", "Die Zahlen", "Und jetzt?",
    ),
    topics={
        "social-media": Topic(
            "Social Media", "Social Media",
            (
                "Auf {platform} zählt Geschwindigkeit, und die passt schlecht zu einem "
                "Freigabeprozess von drei Tagen.",
                "Ein Tweet ist schneller geschrieben als eine Pressemitteilung, bleibt aber "
                "genauso "
                "lange auffindbar.",
                "Die Zahl der Follower sagt wenig, die Zahl der Gespräche sagt viel mehr.",
                "Soziale Netzwerke sind kein Kanal, sondern Orte, an denen Menschen wohnen.",
                "Wer auf {platform} nur Sonderangebote teilt, verliert seine Follower schnell.",
                "Ein Social-Media-Team, das abends und am Wochenende erreichbar ist, macht den "
                "Unterschied.",
                "Die Algorithmen von {platform} belohnen Beiträge, auf die Menschen reagieren.",
            ),
            (
                "Wähle eine Plattform und mach es dort richtig.",
                "Antworte innerhalb einer Stunde auf Fragen.", "Teile auch die Arbeit anderer.",
                "Sprich in der ersten Person.", "Lege vorher fest, wer was beantwortet.",
            ),
            (
                "Social Media bei {brand}: was wir daraus gelernt haben",
                "{n} Missverständnisse über Social Media",
                "Warum {platform} keine Plakatwand ist",
                "Social Media {year}: vom Senden zum Zuhören",
            ),
        ),
        "brand-communities": Topic(
            "Markengemeinschaften", "Brand Communities",
            (
                "Eine Markengemeinschaft entsteht um eine gemeinsame Leidenschaft, nicht um ein "
                "Logo.",
                "Die Fans von {brand} organisieren ihre eigenen Treffen, ganz ohne Zutun der "
                "Marke.",
                "Mitglieder einer Community sind Fürsprecher, aber keine Botschafter im Dienst "
                "des Unternehmens.",
                "Sieh dich als Gastgeber, nicht als Wächter der Marke.",
                "Ein Forum ohne Moderation wird innerhalb eines Monats zur Klagemauer.",
                "Die aktivsten Mitglieder verdienen Anerkennung, und das muss kein Geld sein.",
                "Wer die Community als Verkaufskanal benutzt, verliert sie schnell.",
            ),
            (
                "Suche die Menschen, die schon über deine Marke sprechen.",
                "Gib den Mitgliedern echten Einfluss.", "Organisiere ab und zu ein echtes Treffen.",
                "Sorge dafür, dass immer jemand von der Marke mitliest.",
                "Bedanke dich persönlich bei den aktivsten Mitgliedern.",
            ),
            (
                "Brand Communities: Gastgeber statt Wächter",
                "Was wir von {brand} über Markengemeinschaften lernen",
                "Die Fans von {brand} nehmen die Sache selbst in die Hand",
                "{n} Lektionen aus der Community von {brand}",
            ),
        ),
        "content-marketing": Topic(
            "Content-Marketing", "Content-Marketing",
            (
                "Guter Content beantwortet eine Frage, die dein Kunde ohnehin schon hatte.",
                "Ein Redaktionsplan verhindert, dass man jeden Montag vor einem leeren Bildschirm "
                "sitzt.",
                "Nicht jeder Artikel muss viral gehen; er muss vor allem von den richtigen Leuten "
                "gefunden werden.",
                "Eine gute Geschichte in fünf Formaten zu erzählen ist effizienter als fünf "
                "mittelmäßige Geschichten.",
                "Ein Whitepaper hinter einem Formular bringt Leads, kostet aber Leser.",
                "Die besten Themen kommen oft aus dem Kundenservice.",
                "Schreib für Menschen, nicht für die eigene Geschäftsführung.",
            ),
            (
                "Sammle die zehn häufigsten Fragen.", "Plane einen festen Erscheinungstag.",
                "Lass Kollegen mitschreiben.", "Miss, wie lange die Leute wirklich lesen.",
                "Wirf weg, was niemand liest.",
            ),
            (
                "Content-Marketing ohne Plan ist Rauschen",
                "{n} Fragen für dein Content-Marketing {year}",
                "Warum Content-Marketing bei {brand} funktioniert",
                "Von der Anzeige zum Artikel: Content-Marketing in der Praxis",
            ),
        ),
        "seo": Topic(
            "Suchmaschinenoptimierung", "SEO",
            (
                "Suchmaschinen belohnen Seiten, die eine Frage besser beantworten als die anderen.",
                "Einen Titel voller Suchbegriffe liest niemand gern, auch Google nicht.",
                "Links von anderen Seiten bleiben eines der stärksten Signale.",
                "Eine langsame Website kostet dich Besucher, lange bevor sie dich Platzierungen "
                "kostet.",
                "Lokale Sichtbarkeit beginnt mit einem vollständigen und richtigen Firmeneintrag.",
                "Wer jeden Monat dieselben Texte für ein anderes Suchwort umschreibt, macht seine "
                "eigene Website unlesbar.",
                "Die Suchergebnisse für {city} sehen auf dem Handy ganz anders aus als auf dem "
                "Laptop.",
            ),
            (
                "Schreib zuerst für den Leser.", "Sorge für eine schnelle mobile Seite.",
                "Verwende klare Zwischenüberschriften.",
                "Verlinke deine eigenen besten Artikel.",
                "Prüfe jeden Monat deine kaputten Links.",
            ),
            (
                "SEO {year}: Was wirklich zählt",
                "{n} Fehler, die dich Sichtbarkeit kosten",
                "Suchmaschinenoptimierung für kleine Onlineshops",
                "Wie {brand} ohne Tricks nach oben kam",
            ),
        ),
        "email": Topic(
            "E-Mail-Marketing", "E-Mail-Marketing",
            (
                "Ein Newsletter, der jede Woche dasselbe Angebot wiederholt, landet schnell im "
                "Papierkorb.",
                "Die Betreffzeile entscheidet, ob die Mail geöffnet wird, der erste Satz, ob sie "
                "gelesen wird.",
                "Eine kleinere Liste von interessierten Abonnenten ist mehr wert als eine große "
                "Liste, die niemand liest.",
                "Automatische Mails nach einem Kauf werden überraschend gut gelesen.",
                "Wer ohne Einwilligung verschickt, beschädigt seine Marke und verstößt gegen das "
                "Gesetz.",
                "Die Öffnungsrate des Newsletters von {brand} liegt bei etwa {percent} Prozent.",
                "Ein persönlicher Absender funktioniert besser als eine Noreply-Adresse.",
            ),
            (
                "Frag nur nach dem, was du wirklich brauchst.", "Teste deine Betreffzeilen.",
                "Mach das Abmelden einfach.", "Bereinige deine Liste jedes Quartal.",
                "Schick weniger, aber bessere Mails.",
            ),
            (
                "Der Newsletter ist nicht tot",
                "{n} Lektionen aus {year} Jahren E-Mail-Marketing",
                "Warum die Abonnenten von {brand} den Newsletter wirklich lesen",
                "E-Mail-Marketing: weniger schicken, mehr sagen",
            ),
        ),
        "influencers": Topic(
            "Influencer-Marketing", "Influencer",
            (
                "Ein Influencer mit tausend treuen Followern kann mehr bewirken als ein Star mit "
                "einer Million.",
                "Bezahlte Kooperationen müssen erkennbar sein, sonst verspielt man Vertrauen.",
                "Blogger wollen nicht dafür bezahlt werden, etwas Nettes zu sagen; sie wollen "
                "etwas als Erste erfahren.",
                "Die besten Kooperationen entstehen, wenn die Macher ihre eigene Geschichte "
                "erzählen dürfen.",
                "Ein Produktpaket ohne jede Erklärung zu verschicken ist verschwendetes Geld.",
                "Wer Einfluss kauft, kauft auch die Risiken eines fremden Rufs mit.",
                "Bei {brand} arbeitet man nur noch mit Leuten, die das Produkt schon selbst "
                "benutzt haben.",
            ),
            (
                "Achte auf Interaktion, nicht auf Follower.", "Vereinbare klare Kennzeichnung.",
                "Lass den Machern kreative Freiheit.",
                "Bau eine Beziehung auf, keine Kampagne.", "Lies erst einen Monat lang mit.",
            ),
            (
                "Influencer: Vertrauen ist nicht käuflich",
                "{n} Regeln für die Zusammenarbeit mit Bloggern",
                "Was {brand} aus seiner ersten Influencer-Kampagne gelernt hat",
                "Influencer-Marketing jenseits des Hypes",
            ),
        ),
        "open-source-marketing": Topic(
            "Open Source Marketing", "Open Source Marketing",
            (
                "Gib den Verbrauchern Zugang zum Quellcode deiner Marke und beteilige sie am "
                "Markenaufbau.",
                "Die Marke gehört nicht dir, sondern deinen Kunden.",
                "Stell das Dauerfeuer der Botschaften einmal ab, damit du auch zuhören kannst.",
                "Open Source hält Einzug in die klassische Wirtschaft, auch außerhalb der "
                "Softwarewelt.",
                "Nutzer entwickeln und bewerben Produkte zunehmend selbst.",
                "Vor Gericht hast du das Urheberrecht auf deiner Seite, aber auf dem Markt "
                "verlierst du gegen die Masse.",
                "Sieh die neue Wirklichkeit nicht als Bedrohung, sondern als Chance.",
            ),
            (
                "Teile deine Marke mit deinen Fans.", "Entlasse die Filterer.",
                "Dein Kunde ist nicht dumm.", "Verfolge die Foren und die Blogs.",
                "Sei offen.",
            ),
            (
                "Open Source Marketing: die Marke als Quellcode",
                "Kommt Open Source im Marketing an?",
                "Der Marketer als Moderator",
                "{n} Ratschläge aus dem Open-Source-Marketing-Manifest",
            ),
        ),
        "consumer-generated-media": Topic(
            "nutzergenerierte Inhalte", "Consumer Generated Media",
            (
                "Verbraucher drehen ihre eigenen Werbespots, und manchmal sind die besser als "
                "das Original.",
                "Blogs und Foren geben Verbrauchern eine Bühne, um Anerkennung für ihre "
                "Erfahrungen zu bekommen.",
                "Ein Video eines zufriedenen Kunden überzeugt mehr als ein teurer Werbespot.",
                "Manche Seiten fördern die Zuspitzung von Meinungen.",
                "Der Kunde redet zurück, und zwar öffentlich.",
                "Bewertungen auf {platform} beeinflussen den Kauf stärker als die Website der "
                "Marke selbst.",
                "Respektiere die Reaktionen, auch die negativen, und zeige, was du damit machst.",
            ),
            (
                "Lies, was Kunden über dich schreiben.", "Bedanke dich für Bewertungen.",
                "Gib den Machern Material, mit dem sie arbeiten können.",
                "Reagiere auf Kritik, ohne dich zu verteidigen.",
                "Teile die besten Arbeiten deiner Fans.",
            ),
            (
                "Hilfe, der Kunde redet zurück",
                "Nutzergenerierte Inhalte: der Kunde als Macher",
                "Was die Fans von {brand} selbst gemacht haben",
                "{n} Beispiele von Verbrauchern, die die Marke übernommen haben",
            ),
        ),
    },
    audiences=("Kunden", "Verbraucher", "Leser", "Follower", "Abonnenten", "Fans"),
    persons=(
        "Martin Oetting", "Julia Schneider", "Thomas Weber", "Anna Fischer", "Stefan Becker",
        "Katrin Wagner", "Markus Hoffmann", "Lena Schulz", "Jan Richter", "Sabine Koch",
        "Tobias Klein", "Miriam Wolf", "Florian Braun", "Nina Zimmermann",
    ),
    brands=(
        "Otto", "Zalando", "Tchibo", "dm", "Rewe", "Lufthansa", "die Deutsche Bahn",
        "Vorwerk", "Ritter Sport", "Haribo", "Edeka", "Douglas", "Jägermeister", "Miele",
    ),
    cities=("Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Leipzig", "Stuttgart"),
    events=(
        "dmexco", "re:publica", "Online-Marketing-Konferenz", "Content-Marketing-Konferenz",
        "Social-Media-Woche", "Barcamp-Reihe",
    ),
    orgs=("Bitkom", "der GfK", "Statista", "dem Allensbach-Institut", "Forsa"),
    magazines=("Horizont", "W&V", "t3n", "der Absatzwirtschaft", "dem Handelsblatt"),
    titles=(
        "{Topic}: {n} Lektionen von {brand}", "Was ich auf der {event} über {topic} gelernt habe",
        "{Topic} bei {brand}: eine Zwischenbilanz",
        "Warum sich deine {audience} nicht für {topic} interessieren",
        "{Topic} in {city}: ein Bericht", "{person} über {topic} und {platform}",
        "Wie steht es um {topic} im Jahr {year}?",
        "{n} Fragen zu {topic}, die du dir stellen solltest",
        "Wie {brand} {topic} angeht", "{Topic} und {platform}: wie geht es weiter?",
    ),
    guest_prefixes=("Gastbeitrag: ", "Gastbeitrag | ", "[Gastbeitrag] "),
    footers=(
        "Dieser Beitrag erschien zuerst auf {blog}.",
        "Dieser Beitrag erschien zuerst auf <a href=\"{link}\">{blog}</a>.",
        "Zuerst veröffentlicht auf {blog}. Übernahme mit freundlicher Genehmigung des Autors.",
    ),
    guest_intros=(
        "Dies ist ein Gastbeitrag von {person}.",
        "{person} schreibt regelmäßig über {topic} und durfte diese Woche bei uns schreiben.",
    ),
    feed_footer="Der Beitrag {title} erschien zuerst auf {blog}.",
    read_more="Weiterlesen",
    edits=(
        "Update: Inzwischen hat auch {brand} reagiert.",
        "Nachtrag: Die Zahlen von {org} wurden inzwischen aktualisiert.",
        "Danke an {person} für den Hinweis.",
        "Korrektur: Die Umfrage wurde unter {big} Menschen durchgeführt.",
    ),
    comments=(
        "Schöner Beitrag, kenne ich genau so.", "Da legst du den Finger in die Wunde.",
        "Bei uns im Büro hatten wir genau dieselbe Diskussion.",
        "Ganz einverstanden bin ich aber nicht.", "Es ist vor allem eine Frage des Mutes.",
        "Danke, dass du diese Beispiele teilst.", "Gibt es auch Zahlen zur Wirkung auf den Umsatz?",
        "Guter Punkt mit dem Zuhören, das wird oft vergessen.",
        "Wir haben letztes Jahr damit angefangen und die ersten Ergebnisse sind gut.",
        "Spannend, aber funktioniert das auch für kleine Firmen?",
    ),
    comment_feed_title="Kommentare zu: {title}",
    blog_words=(
        ("marken", "kunden", "netz", "web", "such", "medien", "markt", "klick", "text",
         "dialog", "werbe", "zukunft"),
        ("blick", "werk", "welt", "stube", "labor", "radar", "kompass", "punkt", "zeit",
         "sprache", "forum", "kanal"),
    ),
    tld="de",
    digest_title="Marketing-Planet Deutschland",
    english_opening="\u201e{quote}\u201c Mit diesen Worten eröffnete {person} den Nachmittag "
                    "auf der {event}.",
)

EN = Language(
    code="en",
    subjects=(
        "Many marketers", "Most brands", "Small agencies in {city}", "Brands like {brand}",
        "More and more companies", "Our own clients", "The people at {brand}",
        "Community managers", "Online retailers", "Traditional ad agencies",
        "Young founders", "Big advertisers", "Marketing departments", "The attendees of {event}",
        "Bloggers", "Even small businesses", "Board members", "Press officers",
    ),
    predicates=(
        "still see {platform} as a free billboard.",
        "underestimate how much work a good newsletter takes.",
        "would rather talk about reach than about what their {audience} actually need.",
        "have no idea what their spending on {topic} brings in.",
        "measure what is easy to measure, which is rarely what matters.",
        "do not yet dare to let go of control over their brand.",
        "learn the most from the reactions they would rather not have had.",
        "notice that an honest answer does more than a polished press release.",
        "still spend the bulk of their budget on advertising.",
        "look at {platform} with a mixture of curiosity and fear.",
        "make the mistake of sending exactly the same message through every channel.",
        "should listen more and broadcast less.",
        "start with {topic} without a goal, a plan or an owner.",
        "now have a dedicated editorial team for their own channels.",
        "give up after a few months, just when it starts to work.",
        "regularly ask me how to make the best use of {tool}.",
        "forget that there is a real person behind every profile.",
        "treat {topic} as a campaign, while it is an ongoing conversation.",
        "know exactly which subjects keep their {audience} busy.",
        "only wake up when a complaint about their product starts doing the rounds.",
        "leave the conversation to an intern and are then surprised by the result.",
        "do not earn trust with slogans but with the way they behave.",
        "really do not need to be on every platform.",
        "still write far too often about themselves and too rarely about their customers.",
        "share their knowledge for free and win new work precisely because of it.",
        "invested heavily in video over the past year.",
        "are looking for ways to involve their {audience} in developing new products.",
        "increasingly combine {topic} with customer service.",
        "finally get a clear view of what works thanks to {tool}.",
        "publish {small} new articles a week on average.",
        "suffer from internal rules that make any spontaneous reply impossible.",
        "find it hard to answer criticism in public.",
        "still use their website as a digital brochure.",
        "feed the questions of their {audience} into the planning for next quarter.",
    ),
    sentences=(
        "It sounds simple, but in practice it often goes wrong.",
        "That calls for a different way of thinking about {topic}.",
        "The question is not whether you should start, but how.",
        "A good example of this is {brand}.",
        "At {brand} they understood that as early as {year}.",
        "I am curious how you see this.",
        "The nice thing is that you do not need a big budget for it.",
        "Whoever takes their {audience} seriously gets a lot back.",
        "Still, it remains hard to translate the results into revenue.",
        "The days when a brand told its own story alone are definitely over.",
        "Measuring is fine, but you have to know what you are measuring.",
        "This is not a technical problem, it is an organisational one.",
        "The conversation about your brand happens anyway, with or without you.",
        "Start small, learn fast and only scale up once you know what works.",
        "In {city} I recently saw a fine example of how it can be done.",
        "According to {person}, the biggest obstacle is not technology but culture.",
        "That, to me, is the heart of the matter.",
        "What {brand} does well is answer every single question.",
        "Of course there are critical voices too.",
        "Such an approach takes patience, and that is exactly what many organisations lack.",
        "The budget for {topic} grew by {percent} percent last year.",
        "I wrote about this on this blog before.",
        "The numbers speak for themselves.",
        "Whoever starts today will have a clear head start a year from now.",
        "You can see it in the replies on {platform} as well.",
        "Last week I talked to {person} at {event} in {city}.",
        "{person} summed it up nicely at {event}: no trust, no conversation.",
        "The team at {brand} now has {small} people who do nothing else.",
        "That is not to say that classic advertising is going away.",
        "The difference lies mostly in the tone.",
        "A customer who feels heard comes back.",
        "The legal department has to come along as well, and that does not happen by itself.",
    ),
    intros=(
        "This month {magazine} ran an interesting piece about {topic}.",
        "A while ago I attended {event} in {city}.",
        "I am regularly asked what {topic} actually brings in.",
        "Anyone who has followed {platform} in recent weeks knows that {topic} is in the "
        "spotlight again.",
        "{person} sent me a simple question yesterday: why does {topic} work for {brand} and "
        "not for us?",
        "It is a discussion I have had a lot lately with clients and colleagues.",
        "At {event} this year the talk was remarkably often about {topic}.",
    ),
    outros=(
        "In short: {topic} is not a trick, it is a way of working.",
        "What are your experiences? Let me know in the comments.",
        "I wonder whether we will still be talking about this a year from now.",
        "Want to know more? {person} is running a workshop on this at {event}.",
        "I will keep you posted on how things go at {brand}.",
    ),
    survey="A survey by {org} of {big} {audience} shows that {percent} percent {finding}.",
    findings=(
        "have followed a brand on {platform} at some point",
        "would rather read a blog than look at an advertisement",
        "quickly unsubscribe from a newsletter that is not relevant to them",
        "trust reviews by other customers more than advertising",
        "have never received a reply from a company",
        "search online first before they buy anything",
        "recommend a brand to friends after a good experience with customer service",
        "find video more important than text",
    ),
    quote="\u201c{sentence},\u201d says {person}.",
    tips_intro="{small} tips for anyone who wants to start tomorrow:",
    headings=(
        "In practice", "Why it goes wrong", "What does work?", "Three lessons",
        "Listening before broadcasting", "The role of the marketer", "Measure and adjust",
        "Finally", "Where do you start?", "An example from {city}", "The numbers", "What now?",
    ),
    topics={
        "social-media": Topic(
            "social media", "Social media",
            (
                "On {platform} everything is about speed, which sits badly with a three-day "
                "approval process.",
                "A tweet is quicker to write than a press release, but it stays findable just "
                "as long.",
                "The number of followers says little; the number of conversations says a lot more.",
                "Social networks are not a channel, they are places where people live.",
                "Whoever only shares special offers on {platform} soon loses their followers.",
                "A social team that answers in the evening and at weekends makes all the "
                "difference.",
                "The algorithms of {platform} reward posts that people respond to.",
            ),
            (
                "Pick one platform and do it well.", "Answer questions within the hour.",
                "Share other people's work too.", "Speak in the first person.",
                "Agree beforehand who answers what.",
            ),
            (
                "Social media at {brand}: what we learned",
                "{n} misconceptions about social media",
                "Why {platform} is not a billboard",
                "Social media in {year}: from broadcasting to listening",
            ),
        ),
        "brand-communities": Topic(
            "brand communities", "Brand communities",
            (
                "A brand community grows around a shared passion, not around a logo.",
                "The fans of {brand} organise their own meetups without any help from the brand.",
                "Community members are evangelists, but they are not ambassadors on the "
                "company payroll.",
                "See yourself as a host, not as the guardian of the brand.",
                "A forum without a moderator turns into a wailing wall within a month.",
                "The most active members deserve recognition, and that does not have to be money.",
                "Whoever uses the community as a sales channel soon loses it.",
            ),
            (
                "Find the people who already talk about your brand.",
                "Give members real influence.", "Hold a meeting in real life now and then.",
                "Make sure someone from the brand is always reading along.",
                "Thank the most active members personally.",
            ),
            (
                "Brand communities: host rather than guardian",
                "What {brand} teaches us about brand communities",
                "The fans of {brand} take matters into their own hands",
                "{n} lessons from the {brand} community",
            ),
        ),
        "content-marketing": Topic(
            "content marketing", "Content marketing",
            (
                "Good content answers a question your customer already had.",
                "An editorial calendar saves you from facing an empty screen every Monday.",
                "Not every article has to go viral; above all it has to be found by the right "
                "people.",
                "Telling one good story in five formats is more efficient than five mediocre "
                "stories.",
                "A white paper behind a form brings in leads, but it costs you readers.",
                "The best subjects often come from customer service.",
                "Write for people, not for your own board.",
            ),
            (
                "List the ten questions you are asked most.", "Set a fixed publishing day.",
                "Let colleagues write too.", "Measure how long people really read.",
                "Throw away what nobody reads.",
            ),
            (
                "Content marketing without a plan is noise",
                "{n} questions for your content marketing in {year}",
                "Why content marketing works at {brand}",
                "From advert to article: content marketing in practice",
            ),
        ),
        "seo": Topic(
            "search engine optimisation", "SEO",
            (
                "Search engines reward pages that answer a question better than the rest.",
                "Nobody enjoys reading a title stuffed with keywords, and neither does Google.",
                "Links from other sites remain one of the strongest signals.",
                "A slow website costs you visitors long before it costs you rankings.",
                "Local visibility starts with a complete and correct business listing.",
                "Whoever rewrites the same texts every month for another keyword makes their own "
                "site unreadable.",
                "The search results for {city} look very different on a phone than on a laptop.",
            ),
            (
                "Write for the reader first.", "Make sure your mobile site is fast.",
                "Use clear subheadings.", "Link to your own best articles.",
                "Check for broken links every month.",
            ),
            (
                "SEO in {year}: what really matters",
                "{n} mistakes that cost you visibility",
                "Search engine optimisation for small web shops",
                "How {brand} reached the top without tricks",
            ),
        ),
        "email": Topic(
            "email marketing", "Email marketing",
            (
                "A newsletter that repeats the same offer every week quickly ends up in the bin.",
                "The subject line decides whether your mail is opened, the first sentence whether "
                "it is read.",
                "A smaller list of engaged subscribers is worth more than a big list that nobody "
                "reads.",
                "Automated emails after a purchase are read surprisingly well.",
                "Whoever mails without consent damages their brand and breaks the law.",
                "The open rate of the {brand} newsletter is around {percent} percent.",
                "A personal sender works better than a no-reply address.",
            ),
            (
                "Only ask for what you really need.", "Test your subject lines.",
                "Make unsubscribing easy.", "Clean your list every quarter.",
                "Send less, but better.",
            ),
            (
                "The newsletter is not dead",
                "{n} lessons from {year} years of email marketing",
                "Why {brand} subscribers actually read the newsletter",
                "Email marketing: send less, say more",
            ),
        ),
        "influencers": Topic(
            "influencer marketing", "Influencers",
            (
                "An influencer with a thousand loyal followers can do more than a star with a "
                "million.",
                "Paid partnerships must be recognisable, or you throw away trust.",
                "Bloggers do not want to be paid to say something nice; they want to hear about "
                "things first.",
                "The best partnerships happen when the creator is free to tell their own story.",
                "Sending a product package without any explanation is money thrown away.",
                "Whoever buys influence also buys the risks of someone else's reputation.",
                "At {brand} they only work with creators who already used the product themselves.",
            ),
            (
                "Look at engagement, not at followers.", "Agree on clear disclosure.",
                "Give creators creative freedom.", "Build a relationship, not a campaign.",
                "Read along for a month first.",
            ),
            (
                "Influencers: trust is not for sale",
                "{n} rules for working with bloggers",
                "What {brand} learned from its first influencer campaign",
                "Influencer marketing beyond the hype",
            ),
        ),
        "open-source-marketing": Topic(
            "open source marketing", "Open source marketing",
            (
                "Give consumers access to the source code of your brand and involve them in "
                "building it.",
                "The brand does not belong to you, it belongs to your customers.",
                "Stop the bombardment of messages for a while so that you can listen as well.",
                "Open source is entering the classic economy, even outside the software world.",
                "Users increasingly develop and promote products themselves.",
                "In court you have copyright on your side, but in the market you lose to the "
                "crowd.",
                "Do not see the new reality as a threat, but as an opportunity.",
            ),
            (
                "Share your brand with your fans.", "Fire the filterers.",
                "Your customer is not stupid.", "Follow the forums and the blogs.",
                "Be open.",
            ),
            (
                "Open source marketing: the brand as source code",
                "Is open source breaking through in marketing?",
                "The marketer as facilitator",
                "{n} pieces of advice from the open source marketing manifesto",
            ),
        ),
        "consumer-generated-media": Topic(
            "consumer generated media", "Consumer generated media",
            (
                "Consumers make their own commercials, and sometimes they are better than the "
                "original.",
                "Blogs and forums give consumers a stage to ask for recognition of their "
                "experiences.",
                "A video by a happy customer convinces more than an expensive commercial.",
                "Some sites encourage opinions to become ever more extreme.",
                "The consumer talks back, and does so in public.",
                "Reviews on {platform} influence purchases more than the brand's own website.",
                "Respect the reactions, even the negative ones, and show what you do with them.",
            ),
            (
                "Read what customers write about you.", "Thank people for their reviews.",
                "Give creators material to work with.",
                "Respond to criticism without getting defensive.",
                "Share the best work of your fans.",
            ),
            (
                "Help, the consumer talks back",
                "Consumer generated media: the customer as maker",
                "What the fans of {brand} made themselves",
                "{n} examples of consumers who took over the brand",
            ),
        ),
    },
    audiences=("customers", "consumers", "readers", "followers", "subscribers", "fans"),
    persons=(
        "Sarah Mitchell", "James Cherkoff", "Emily Clarke", "David Harris", "Rachel Turner",
        "Tom Fletcher", "Laura Bennett", "Mark Davies", "Hannah Wright", "Chris Walker",
        "Olivia Reed", "Peter Hughes", "Grace Morgan", "Daniel Price",
    ),
    brands=(
        "Starbucks", "Dell", "Nike", "Lego", "Patagonia", "Airbnb", "Mailchimp", "HubSpot",
        "Buffer", "Innocent", "Ben & Jerry's", "Marks & Spencer", "Tesco", "Burberry",
    ),
    cities=("London", "Manchester", "Boston", "Austin", "Dublin", "Leeds", "Chicago"),
    events=(
        "Content Marketing World", "SMX London", "BrightonSEO", "INBOUND", "Social Media Week",
        "the Festival of Marketing",
    ),
    orgs=("Pew Research", "Forrester", "Gartner", "eMarketer", "Nielsen"),
    magazines=("Adweek", "Marketing Week", "The Drum", "Harvard Business Review", "Campaign"),
    titles=(
        "{Topic}: {n} lessons from {brand}", "What I learned about {topic} at {event}",
        "{Topic} at {brand}: an interim report", "Why your {audience} do not care about {topic}",
        "{Topic} in {city}: a report", "{person} on {topic} and {platform}",
        "The state of {topic} in {year}", "{n} questions about {topic} to ask yourself",
        "How {brand} approaches {topic}", "{Topic} and {platform}: where next?",
    ),
    guest_prefixes=("Guest post: ", "Guest post | ", "[Guest post] "),
    footers=(
        "This article first appeared on {blog}.",
        "This article first appeared on <a href=\"{link}\">{blog}</a>.",
        "Originally published on {blog}. Republished with the author's permission.",
    ),
    guest_intros=(
        "This is a guest post by {person}.",
        "{person} writes regularly about {topic} and kindly agreed to write for us this week.",
    ),
    feed_footer="The post {title} appeared first on {blog}.",
    read_more="Read more",
    edits=(
        "Update: {brand} has since responded as well.",
        "Addendum: the figures from {org} have since been updated.",
        "Thanks to {person} for the tip.",
        "Correction: the survey was held among {big} people.",
    ),
    comments=(
        "Great piece, very recognisable.", "I think you hit the nail on the head here.",
        "We had exactly the same discussion at our office.",
        "Still, I do not entirely agree with you.", "It is mostly a matter of daring.",
        "Thanks for sharing these examples.", "Do you also have figures on the effect on sales?",
        "Good point about listening, that is often forgotten.",
        "We started with this last year and the first results are good.",
        "Interesting, but does this also work for small businesses?",
    ),
    comment_feed_title="Comments on: {title}",
    blog_words=(
        ("brand", "client", "web", "search", "media", "market", "buzz", "pixel", "story",
         "signal", "growth", "inbound"),
        ("notes", "talk", "lab", "works", "view", "matters", "point", "desk", "craft",
         "compass", "journal", "minded"),
    ),
    tld="com",
    digest_title="Marketing Planet",
)

VOCABULARIES: dict[str, Language] = {"nl": NL, "de": DE, "en": EN}
PLATFORMS = ("Twitter", "Facebook", "LinkedIn", "Instagram", "YouTube", "Pinterest", "TikTok")
TOOLS = ("Hootsuite", "Google Analytics", "Mailchimp", "WordPress", "Canva", "Buffer", "Yoast")
#: Extra networks a Dutch or German blog of the period would name.
LOCAL_PLATFORMS = {"nl": ("Hyves",), "de": ("Xing", "StudiVZ"), "en": ()}

# =========================================================================== articles


@dataclass(frozen=True, slots=True)
class Block:
    """One block of an article body: a paragraph, a heading or a list."""

    #: "p", "h2", "ul", or "html" (one paragraph of trusted markup, e.g. a footer link).
    tag: str
    #: Sentences of a paragraph, the heading text, or the list items.
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Article:
    """The text of one article, as its author wrote it."""

    id: str
    language: str
    subject: str
    title: str
    blocks: tuple[Block, ...]
    author: str
    #: The article's people, brands and places (shared with a related article).
    story: dict[str, str] = field(hash=False, compare=False)


def _slots(story: dict[str, str], rng: random.Random) -> dict[str, str]:
    """The story's fixed slots plus fresh numbers for this one sentence."""
    values = dict(story)
    values["percent"] = str(rng.randint(7, 87))
    values["small"] = str(rng.randint(3, 9))
    values["n"] = str(rng.randint(3, 12))
    values["big"] = f"{rng.randint(4, 40) * 100:,}".replace(",", story["thousands"])
    values["year"] = story["year"]
    return values


def _fill(template: str, story: dict[str, str], rng: random.Random) -> str:
    text = template.format_map(_slots(story, rng))
    return text[0].upper() + text[1:] if text else text


def make_story(lang: Language, subject: str, rng: random.Random) -> dict[str, str]:
    """The people, brands, places and numbers an article is about."""
    platforms = PLATFORMS + LOCAL_PLATFORMS[lang.code]
    return {
        "brand": rng.choice(lang.brands),
        "person": rng.choice(lang.persons),
        "city": rng.choice(lang.cities),
        "event": rng.choice(lang.events),
        "platform": rng.choice(platforms),
        "tool": rng.choice(TOOLS),
        "audience": rng.choice(lang.audiences),
        "org": rng.choice(lang.orgs),
        "magazine": rng.choice(lang.magazines),
        "topic": lang.topics[subject].name,
        "Topic": lang.topics[subject].name[0].upper() + lang.topics[subject].name[1:],
        "thousands": "," if lang.code == "en" else ".",
        "year": str(rng.randint(2008, 2013)),
    }


class _SentencePool:
    """Draws sentences for one article without repeating a template."""

    def __init__(self, lang: Language, subject: str, second: str, story: dict[str, str],
                 rng: random.Random, avoid: set[str] | None = None) -> None:
        self.lang, self.story, self.rng = lang, story, rng
        avoid = avoid or set()
        self.predicates = [p for p in lang.predicates if p not in avoid]
        self.general = [s for s in lang.sentences if s not in avoid]
        self.topical = [s for s in lang.topics[subject].sentences + lang.topics[second].sentences
                        if s not in avoid]
        self.findings = list(lang.findings)
        for pool in (self.predicates, self.general, self.topical, self.findings):
            rng.shuffle(pool)
        self.used: set[str] = set()

    def sentence(self) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45 and self.predicates:
            template = self.predicates.pop()
            self.used.add(template)
            subject = _fill(rng.choice(self.lang.subjects), self.story, rng)
            return f"{subject} {template.format_map(_slots(self.story, rng))}"
        if roll < 0.5 and self.findings:
            finding = self.findings.pop().format_map(_slots(self.story, rng))
            return _fill(self.lang.survey, {**self.story, "finding": finding}, rng)
        if roll < 0.55 and self.predicates:
            template = self.predicates.pop()
            self.used.add(template)
            subject = _fill(rng.choice(self.lang.subjects), self.story, rng)
            said = f"{subject} {template.format_map(_slots(self.story, rng))}".rstrip(".")
            return _fill(self.lang.quote, {**self.story, "sentence": said}, rng)
        if roll < 0.78 and self.topical:
            template = self.topical.pop()
        elif self.general:
            template = self.general.pop()
        elif self.topical:
            template = self.topical.pop()
        elif self.predicates:
            template = self.predicates.pop()
            subject = _fill(rng.choice(self.lang.subjects), self.story, rng)
            self.used.add(template)
            return f"{subject} {template.format_map(_slots(self.story, rng))}"
        else:
            return None
        self.used.add(template)
        return _fill(template, self.story, rng)


def _words(blocks: Iterable[Block]) -> int:
    return sum(len(part.split()) for block in blocks for part in block.parts)


def write_article(
    article_id: str, lang: Language, subject: str, story: dict[str, str], rng: random.Random,
    *, title: str | None = None, avoid: set[str] | None = None,
    quoted: Sequence[str] = (),
) -> tuple[Article, set[str]]:
    """A post of 150–800 words on ``subject``; returns it and the templates it used."""
    second = rng.choice([t for t in TOPIC_KEYS if t != subject])
    topic = lang.topics[subject]
    pool = _SentencePool(lang, subject, second, story, rng, avoid)
    target = rng.randint(150, 800)
    if title is None:
        templates = topic.titles if rng.random() < 0.2 else lang.titles
        title = _fill(rng.choice(templates), story, rng)
    blocks: list[Block] = []
    intro = [_fill(rng.choice(lang.intros), story, rng)]
    if lang.english_opening and rng.random() < 0.04:
        # Dutch and German posts open with an English quote now and then, which a
        # detector that reads only the first few hundred characters stumbles over.
        english = {**story, "topic": EN.topics[subject].name, "audience": rng.choice(EN.audiences)}
        said = _fill(rng.choice(EN.sentences + EN.topics[subject].sentences), english, rng)
        intro.insert(0, lang.english_opening.format_map({**story, "quote": said}))
    intro += [s for s in (pool.sentence() for _ in range(rng.randint(1, 3))) if s]
    blocks.append(Block("p", tuple(intro)))
    pending_quotes = list(quoted)
    tips_done = False
    headings = list(lang.headings)
    rng.shuffle(headings)
    while _words(blocks) < target - 25:
        if target > 300 and headings and rng.random() < 0.45:
            blocks.append(Block("h2", (_fill(headings.pop(), story, rng),)))
        if not tips_done and rng.random() < 0.15:
            tips_done = True
            tips = list(topic.tips)
            rng.shuffle(tips)
            count = rng.randint(3, len(tips))
            # The intro announces as many tips as follow.
            intro_line = lang.tips_intro.format_map({**_slots(story, rng), "small": str(count)})
            blocks.append(Block("p", (intro_line,)))
            blocks.append(Block("ul", tuple(tips[:count])))
            continue
        sentences = [s for s in (pool.sentence() for _ in range(rng.randint(2, 6))) if s]
        if pending_quotes:
            sentences.insert(rng.randint(0, len(sentences)), pending_quotes.pop())
        if not sentences:
            break
        blocks.append(Block("p", tuple(sentences)))
    for quote_left in pending_quotes:
        blocks.append(Block("p", (quote_left,)))
    blocks.append(Block("p", (_fill(rng.choice(lang.outros), story, rng),)))
    article = Article(article_id, lang.code, subject, title, tuple(blocks), story["person"], story)
    return article, pool.used


def render_html(blocks: Sequence[Block]) -> str:
    out = []
    for block in blocks:
        if block.tag == "html":
            out.append(f"<p>{block.parts[0]}</p>")
        elif block.tag == "ul":
            items = "".join(f"<li>{html.escape(item, quote=False)}</li>" for item in block.parts)
            out.append(f"<ul>{items}</ul>")
        elif block.tag == "h2":
            out.append(f"<h2>{html.escape(block.parts[0], quote=False)}</h2>")
        else:
            out.append("<p>" + " ".join(html.escape(s, quote=False) for s in block.parts) + "</p>")
    return "\n".join(out)


def plain_text(blocks: Sequence[Block]) -> str:
    return " ".join(_html_text(part) if block.tag == "html" else part
                    for block in blocks for part in block.parts)


def excerpt(blocks: Sequence[Block], words: int) -> str:
    """The first ``words`` words of the text, as a WordPress excerpt does it."""
    tokens = plain_text(blocks).split()
    if len(tokens) <= words:
        return " ".join(tokens)
    return " ".join(tokens[:words]) + " […]"


# =========================================================================== feeds and items


@dataclass(slots=True)
class Comment:
    guid: str
    link: str
    author: str
    published: datetime
    text: str


@dataclass(slots=True)
class Item:
    """One item (RSS) or entry (Atom) of one feed, with its label."""

    guid: str
    title: str
    link: str
    published: datetime
    author: str
    category: str
    #: None when the feed carries only a summary.
    content_html: str | None
    summary_html: str
    #: Characters of plain text in the body a reader gets (content, else summary).
    text_chars: int
    article: str
    kind: str
    variant: str = ""
    #: The blog's own post number (WordPress ?p=, Blogger post id).
    post_id: int = 0
    orig_link: str | None = None
    comments: list[Comment] = field(default_factory=list)
    comment_feed_path: str | None = None
    #: Times the item is written verbatim (guid and all) into its feed.
    times: int = 1


@dataclass(slots=True)
class Feed:
    """One feed of the corpus: a blog, a planet-style digest, or a FeedBurner mirror."""

    name: str
    kind: str  # "blog", "digest" or "mirror"
    language: str
    #: The language the feed declares (may be a CMS default, or missing).
    declared_language: str | None
    title: str
    site: str
    format: str  # "rss" or "atom"
    #: How the blog spells its post links: "wordpress", "blogger" or "plain".
    style: str
    path: str
    blog_id: int
    yoast_footer: bool = False
    summary_only: bool = False
    #: WordPress blogs that keep UTF-8 in their slugs.
    utf8_slugs: bool = False
    items: list[Item] = field(default_factory=list)
    next_post: int = 1000
    #: Links given out so far: a blog never gives two posts one address.
    links: set[str] = field(default_factory=set)

    def new_post_id(self, rng: random.Random) -> int:
        self.next_post += rng.randint(3, 40)
        return self.next_post


@dataclass(slots=True)
class Corpus:
    feeds: list[Feed]
    articles: dict[str, Article]
    #: Related article id → the article it is related to.
    related: dict[str, str]
    #: Article id → (feed, item) of its original.
    originals: dict[str, tuple[Feed, Item]]
    seed: int


def _slugify(title: str, keep_utf8: bool) -> str:
    text = title.lower()
    if not keep_utf8:
        text = text.replace("ß", "ss")
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c))
    text = re.sub(r"[^\w]+", "-", text).strip("-")
    return text[:70].strip("-") or "post"


def _post_link(feed: Feed, published: datetime, slug: str) -> str:
    path_slug = quote(slug, safe="-").lower() if feed.utf8_slugs else slug
    if feed.style == "blogger":
        return f"{feed.site}/{published:%Y}/{published:%m}/{path_slug}.html"
    if feed.style == "plain":
        return f"{feed.site}/blog/{path_slug}/"
    return f"{feed.site}/{published:%Y}/{published:%m}/{path_slug}/"


def _guid(feed: Feed, post_id: int, rng: random.Random) -> str:
    if feed.style == "blogger":
        return f"tag:blogger.com,1999:blog-{feed.blog_id}.post-{post_id}"
    if feed.style == "plain":
        return f"urn:uuid:{rng.getrandbits(128):032x}"
    return f"{feed.site}/?p={post_id}"


def _item_for(feed: Feed, article: Article, published: datetime, rng: random.Random, *,
              kind: str, title: str | None = None, blocks: Sequence[Block] | None = None,
              summary_only: bool | None = None, summary_words: int = 55,
              variant: str = "") -> Item:
    """An item on ``feed``'s own site carrying ``article`` (or an edited form of it)."""
    blocks = tuple(blocks if blocks is not None else article.blocks)
    title = title if title is not None else article.title
    post_id = feed.new_post_id(rng)
    slug = _slugify(article.title, feed.utf8_slugs)
    link = _post_link(feed, published, slug)
    number = 2
    while link in feed.links:
        # As WordPress does for a second post with the same title: "slug-2".
        link = _post_link(feed, published, f"{slug}-{number}")
        number += 1
    feed.links.add(link)
    only_summary = feed.summary_only if summary_only is None else summary_only
    body = render_html(blocks)
    if feed.yoast_footer:
        lang = VOCABULARIES[feed.language]
        body += "\n<p>" + lang.feed_footer.format(
            title=f'<a href="{html.escape(link)}">{html.escape(title, quote=False)}</a>',
            blog=f'<a href="{html.escape(feed.site)}/">{html.escape(feed.title)}</a>',
        ) + "</p>"
    summary = html.escape(excerpt(blocks, summary_words), quote=False)
    text_chars = len(_html_text(summary if only_summary else body))
    return Item(
        guid=_guid(feed, post_id, rng), title=title, link=link, published=published,
        author=article.author,
        category=VOCABULARIES[feed.language].topics[article.subject].category,
        content_html=None if only_summary else body, summary_html=summary,
        text_chars=text_chars, article=article.id, kind=kind, variant=variant,
        post_id=post_id,
    )


_TAG = re.compile(r"<[^>]+>")


def _html_text(markup: str) -> str:
    return html.unescape(" ".join(_TAG.sub(" ", markup).split()))


# --------------------------------------------------------------------------- URL variants

#: Every way the corpus respells an article's link.
URL_VARIANTS = (
    "utm", "fbclid", "scheme", "www", "mobile", "slash", "index", "amp_path", "amp_query",
    "percent", "fragment", "feedproxy",
)


#: Variants that change the scheme, host or path come before those that add a
#: query or a fragment, so that two combine into one well-formed URL.
_VARIANT_ORDER = (
    "scheme", "www", "mobile", "slash", "index", "amp_path", "percent", "feedproxy",
    "utm", "fbclid", "amp_query", "fragment",
)


def _with_query(link: str, query: str) -> str:
    return f"{link}&{query}" if "?" in link else f"{link}?{query}"


def variants_for(link: str) -> tuple[str, ...]:
    """The URL variants that make sense for ``link``: a Blogger ".html" page has no slash forms."""
    if link.endswith("/"):
        return URL_VARIANTS
    excluded = {"slash", "index", "amp_path"}
    if ".blogspot.com/" in link:
        excluded.add("www")
    return tuple(v for v in URL_VARIANTS if v not in excluded)


def url_variant(link: str, variant: str, rng: random.Random, *, feed_name: str = "") -> str:
    """``link`` spelled another way, as ``variant`` (one of URL_VARIANTS) does it."""
    scheme, rest = link.split("://", 1)
    host, _, path = rest.partition("/")
    path = "/" + path
    name = re.sub(r"[^A-Za-z0-9]", "", feed_name.title()) or "Blog"
    if variant == "utm":
        return _with_query(link, f"utm_source=feedburner&utm_medium=feed"
                                 f"&utm_campaign=Feed%3A+{name}")
    if variant == "fbclid":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        token = "".join(rng.choice(alphabet) for _ in range(40))
        return _with_query(link, f"fbclid=IwAR{token}")
    if variant == "scheme":
        return ("http" if scheme == "https" else "https") + "://" + rest
    if variant == "www":
        host = host[4:] if host.startswith("www.") else "www." + host
        return f"{scheme}://{host}{path}"
    if variant == "mobile":
        if host.endswith(".blogspot.com"):
            # Blogger's mobile view is a query, not a host.
            return _with_query(link, "m=1")
        host = "m." + (host[4:] if host.startswith("www.") else host)
        return f"{scheme}://{host}{path}"
    if variant == "slash":
        return link[:-1] if link.endswith("/") else link + "/"
    if variant == "index":
        return link + "index.html" if link.endswith("/") else link + "/index.html"
    if variant == "amp_path":
        return link + "amp/" if link.endswith("/") else link + "/amp/"
    if variant == "amp_query":
        return _with_query(link, "amp=1")
    if variant == "percent":
        if "%" in path:
            # WordPress writes lower-case escapes; others upper-case them.
            path = re.sub(r"%[0-9a-f]{2}", lambda m: m.group(0).upper(), path)
        else:
            # An unreserved character escaped: the same URL by RFC 3986 §6.2.2.2.
            head, _, last = path.rstrip("/").rpartition("/")
            position = next((i for i, c in enumerate(last) if c.isalpha()), 0)
            last = last[:position] + f"%{ord(last[position]):02X}" + last[position + 1:]
            path = head + "/" + last + ("/" if path.endswith("/") else "")
        return f"{scheme}://{host}{path}"
    if variant == "fragment":
        return link + rng.choice(("#more", "#comments", "#respond", "#utm_source=twitter"))
    if variant == "feedproxy":
        token = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                        for _ in range(11))
        proxy = rng.choice(("https://feeds.feedburner.com", "http://feedproxy.google.com"))
        last = path.rstrip("/").rsplit("/", 1)[-1]
        return f"{proxy}/~r/{name}/~3/{token}/{last}"
    raise ValueError(f"unknown URL variant {variant!r}")


# --------------------------------------------------------------------------- building

FEEDFLARE = (
    '<div class="feedflare"><a href="http://feeds.feedburner.com/~ff/{name}?a={token}">'
    "Email this</a> <a href=\"http://feeds.feedburner.com/~ff/{name}?a={token}2\">"
    'Share on Facebook</a></div><img src="http://feeds.feedburner.com/~r/{name}/~4/{token}" '
    'height="1" width="1" alt=""/>'
)


def _date(rng: random.Random) -> datetime:
    return EPOCH + timedelta(days=rng.randint(0, 700), hours=rng.randint(0, 13),
                             minutes=rng.choice((0, 5, 12, 30, 45, 57)))


def _new_feed(kind: str, language: str, rng: random.Random, used_names: set[str]) -> Feed:
    lang = VOCABULARIES[language]
    if kind == "digest":
        base = f"planet-{language}"
        title = lang.digest_title
    else:
        first, second = lang.blog_words
        base = rng.choice(first) + rng.choice(second)
        title = base.capitalize()
    name = base
    number = 2
    while name in used_names:
        name = f"{base}{number}"
        number += 1
    used_names.add(name)
    if kind == "digest" and name != base:
        title = f"{title} {name[len(base):]}"
    style = "wordpress"
    fmt = "rss"
    roll = rng.random()
    if kind == "blog" and roll < 0.2:
        style, fmt = "blogger", "atom"
    elif kind == "blog" and roll < 0.3:
        style, fmt = "plain", "atom"
    elif kind == "digest":
        style, fmt = "plain", rng.choice(("rss", "atom"))
    if style == "blogger":
        site = f"https://{name}.blogspot.com"
    else:
        host = f"{name}.{lang.tld}"
        site = f"{rng.choice(('https://www.', 'https://www.', 'https://', 'http://www.'))}{host}"
    declared_roll = rng.random()
    declared: str | None = {"nl": "nl-NL", "de": "de-DE", "en": "en-US"}[language]
    if declared_roll < 0.1:
        declared = "en-US"  # the CMS default nobody changed
    elif declared_roll < 0.15:
        declared = None
    path = {"atom": f"/{name}/atom.xml", "rss": f"/{name}/feed/"}[fmt]
    return Feed(
        name=name, kind=kind, language=language, declared_language=declared,
        title=title if kind == "digest" else name.capitalize(), site=site, format=fmt,
        style=style, path=path, blog_id=rng.randint(10**17, 10**18),
        yoast_footer=kind == "blog" and style == "wordpress" and rng.random() < 0.15,
        summary_only=kind == "blog" and rng.random() < 0.06,
        utf8_slugs=style == "wordpress" and language == "de" and rng.random() < 0.3,
    )


def _related_title(lang: Language, article: Article, story: dict[str, str],
                   rng: random.Random) -> str:
    """A title close to ``article``'s, as a follow-up on the same subject gets."""
    topic = lang.topics[article.subject]
    if rng.random() < 0.5:
        others = [t for t in topic.titles if _fill(t, story, rng) != article.title]
        return _fill(rng.choice(others), story, rng)
    follow_up = {"nl": ("{t} (deel 2)", "Nog eens: {t}", "{t}, een jaar later"),
                 "de": ("{t} (Teil 2)", "Noch einmal: {t}", "{t}, ein Jahr später"),
                 "en": ("{t} (part 2)", "Revisited: {t}", "{t}, a year on")}[lang.code]
    return rng.choice(follow_up).format(t=article.title)


def _light_edit(article: Article, lang: Language, rng: random.Random,
                used: set[str]) -> tuple[tuple[Block, ...], str]:
    """``article``'s blocks with one sentence changed or one added."""
    blocks = list(article.blocks)
    paragraphs = [i for i, b in enumerate(blocks) if b.tag == "p" and len(b.parts) >= 2]
    if not paragraphs:
        paragraphs = [i for i, b in enumerate(blocks) if b.tag == "p"]
    index = rng.choice(paragraphs)
    parts = list(blocks[index].parts)
    if rng.random() < 0.5:
        fresh = [s for s in lang.sentences if s not in used]
        position = rng.randrange(len(parts))
        parts[position] = _fill(rng.choice(fresh or list(lang.sentences)), article.story, rng)
        how = "changed"
    else:
        parts.insert(rng.randint(0, len(parts)), _fill(rng.choice(lang.edits), article.story, rng))
        how = "added"
    blocks[index] = Block("p", tuple(parts))
    return tuple(blocks), how


def _comments_for(feed: Feed, item: Item, rng: random.Random) -> None:
    lang = VOCABULARIES[feed.language]
    count = rng.randint(1, 4)
    names = list(lang.persons)
    rng.shuffle(names)
    for number in range(count):
        comment_id = item.post_id * 10 + number + 1
        if feed.style == "blogger":
            guid = f"tag:blogger.com,1999:blog-{feed.blog_id}.post-{comment_id}"
        elif feed.style == "plain":
            guid = f"urn:uuid:{rng.getrandbits(128):032x}"
        else:
            guid = f"{feed.site}/?p={item.post_id}#comment-{comment_id}"
        sentences = rng.sample(lang.comments, rng.randint(1, 3))
        item.comments.append(Comment(
            guid=guid, link=f"{item.link}#comment-{comment_id}",
            author=names[number % len(names)].split()[0],
            published=item.published + timedelta(hours=rng.randint(1, 200)),
            text=" ".join(sentences),
        ))
    if feed.style == "blogger":
        item.comment_feed_path = f"/{feed.name}/feeds/{item.post_id}/comments/default"
    else:
        item.comment_feed_path = f"/{feed.name}/comments/{item.post_id}/feed/"


def _composition(feeds: int) -> tuple[int, int, int]:
    """How many blogs, digests and FeedBurner mirrors make ``feeds`` feeds."""
    if feeds < 3:
        raise ValueError("a corpus needs at least 3 feeds")
    digests = max(1, round(feeds * 0.08))
    mirrors = max(1, round(feeds * 0.05)) if feeds >= 5 else 0
    return feeds - digests - mirrors, digests, mirrors


def build(feeds: int, seed: int) -> Corpus:
    """The corpus for ``feeds`` feeds and ``seed``, in memory."""
    rng = random.Random(seed)
    n_blogs, n_digests, n_mirrors = _composition(feeds)
    used_names: set[str] = set()
    languages = [LANGUAGES[i] if i < 3 else rng.choices(LANGUAGES, (0.4, 0.3, 0.3))[0]
                 for i in range(n_blogs)]
    blogs = [_new_feed("blog", language, rng, used_names) for language in languages]
    by_language = {code: [b for b in blogs if b.language == code] for code in LANGUAGES}
    articles: dict[str, Article] = {}
    used_templates: dict[str, set[str]] = {}
    related: dict[str, str] = {}
    originals: dict[str, tuple[Feed, Item]] = {}
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"a{counter:05d}"

    # Originals, and related-but-distinct follow-ups on the same subject.
    for blog in blogs:
        lang = VOCABULARIES[blog.language]
        for _ in range(rng.randint(5, 10)):
            subject = rng.choice(TOPIC_KEYS)
            story = make_story(lang, subject, rng)
            article, used = write_article(next_id(), lang, subject, story, rng)
            articles[article.id] = article
            used_templates[article.id] = used
            item = _item_for(blog, article, _date(rng), rng, kind="original")
            blog.items.append(item)
            originals[article.id] = (blog, item)
            if rng.random() < 0.08:
                home = blog if rng.random() < 0.6 else rng.choice(by_language[blog.language])
                quoted = [s for b in article.blocks if b.tag == "p" for s in b.parts][1:]
                quoted = rng.sample(quoted, min(len(quoted), rng.randint(1, 2)))
                sibling, sibling_used = write_article(
                    next_id(), lang, subject, story, rng,
                    title=_related_title(lang, article, story, rng),
                    avoid=used, quoted=quoted,
                )
                articles[sibling.id] = sibling
                used_templates[sibling.id] = sibling_used
                related[sibling.id] = article.id
                when = item.published + timedelta(days=rng.choice((-1, 1)) * rng.randint(3, 40))
                sibling_item = _item_for(home, sibling, when, rng, kind="related")
                home.items.append(sibling_item)
                originals[sibling.id] = (home, sibling_item)

    # Copies of originals: cross-posts, light edits and repeats in the own feed.
    for article_id, (blog, original) in list(originals.items()):
        if article_id in related:
            continue
        article = articles[article_id]
        lang = VOCABULARIES[blog.language]
        others = [b for b in by_language[blog.language] if b is not blog]
        if others and rng.random() < 0.18:
            for _ in range(1 if rng.random() < 0.8 else 2):
                host = rng.choice(others)
                flags: list[str] = []
                title = article.title
                blocks = list(article.blocks)
                if rng.random() < 0.4:
                    title = rng.choice(lang.guest_prefixes) + title
                    flags.append("prefix")
                if rng.random() < 0.15:
                    blocks.insert(0, Block("p", (_fill(rng.choice(lang.guest_intros),
                                                       article.story, rng),)))
                    flags.append("intro")
                if rng.random() < 0.5:
                    footer = rng.choice(lang.footers).format(
                        blog=html.escape(blog.title), link=html.escape(original.link))
                    blocks.append(Block("html", (footer,)))
                    flags.append("footer")
                summary_only = rng.random() < 0.15 or host.summary_only
                if summary_only:
                    flags.append("summary_only")
                when = original.published + timedelta(days=rng.randint(1, 20),
                                                      hours=rng.randint(0, 10))
                copy = _item_for(host, article, when, rng, kind="crosspost", title=title,
                                 blocks=blocks, summary_only=summary_only,
                                 summary_words=rng.randint(20, 100),
                                 variant="+".join(flags) or "verbatim")
                if rng.random() < 0.3:
                    _comments_for(host, copy, rng)
                host.items.append(copy)
        if others and rng.random() < 0.10:
            host = rng.choice(others)
            blocks, how = _light_edit(article, lang, rng, used_templates[article_id])
            title = article.title
            if rng.random() < 0.3:
                title = rng.choice(lang.guest_prefixes) + title
                how += "+prefix"
            when = original.published + timedelta(days=rng.randint(1, 30))
            # A light edit is a full copy: a summary-only one would be a cross-post.
            host.items.append(_item_for(host, article, when, rng, kind="light_edit",
                                        title=title, blocks=blocks, summary_only=False,
                                        variant=how))
        roll = rng.random()
        if roll < 0.05:
            when = original.published + timedelta(hours=rng.randint(1, 48))
            again = _item_for(blog, article, when, rng, kind="repeat", variant="new_guid")
            if rng.random() < 0.5:
                again.link = original.link
                again.variant = "new_guid_same_link"
            else:
                again.variant = "new_guid_new_link"  # _item_for gave it "slug-2"
            blog.items.append(again)
        elif roll < 0.08:
            original.times = 2
        if rng.random() < 0.12:
            _comments_for(blog, original, rng)

    feeds_out: list[Feed] = list(blogs)

    # Planet-style digests: other spellings of the links, full text or an excerpt.
    for index in range(n_digests):
        language = LANGUAGES[index % 3]
        digest = _new_feed("digest", language, rng, used_names)
        candidates = [(b, i) for b in by_language[language] for i in b.items
                      if i.kind in ("original", "related")]
        rng.shuffle(candidates)
        for blog, source_item in candidates[:rng.randint(10, 18)]:
            article = articles[source_item.article]
            possible = variants_for(source_item.link)
            chosen = [rng.choice(possible)]
            if rng.random() < 0.25 and chosen[0] != "feedproxy":
                # Two at once, e.g. a tracking parameter on the http:// form.
                chosen.append(rng.choice([v for v in possible
                                          if v not in ("feedproxy", chosen[0])]))
            chosen.sort(key=_VARIANT_ORDER.index)
            link = source_item.link
            for variant in chosen:
                link = url_variant(link, variant, rng, feed_name=blog.name)
            if ".blogspot.com/" in source_item.link:
                # Blogger's mobile form is "?m=1", not an m. host: name it so.
                chosen = ["mobile_query" if v == "mobile" else v for v in chosen]
            full = rng.random() < 0.55
            same_date = rng.random() < 0.5
            when = source_item.published if same_date else (
                source_item.published + timedelta(hours=rng.randint(1, 72)))
            digest_id = digest.new_post_id(rng)
            # Planet Venus puts the blog's name before the title.
            title = (source_item.title if rng.random() < 0.5
                     else f"{blog.title}: {source_item.title}")
            summary = html.escape(excerpt(article.blocks, rng.randint(40, 120)), quote=False)
            body = source_item.content_html if full and source_item.content_html else None
            guid = (source_item.guid if rng.random() < 0.4
                    else f"https://planet.{digest.name}.example/item/{digest_id}")
            digest.items.append(Item(
                guid=guid, title=title, link=link, published=when, author=source_item.author,
                category=source_item.category, content_html=body, summary_html=summary,
                text_chars=len(_html_text(body or summary)), article=article.id,
                kind="url_variant",
                variant="+".join(chosen) + ("" if body else "+excerpt")
                + ("+same_date" if same_date else ""),
                post_id=digest_id,
            ))
        feeds_out.append(digest)

    # FeedBurner mirrors of RSS blogs: feedproxy links, feedburner:origLink, flare.
    rss_blogs = [b for b in blogs if b.format == "rss"]
    rng.shuffle(rss_blogs)
    for blog in rss_blogs[:n_mirrors]:
        mirror = Feed(
            name=f"feedburner-{blog.name}", kind="mirror", language=blog.language,
            declared_language=blog.declared_language, title=blog.title, site=blog.site,
            format="rss", style=blog.style, path=f"/feedburner/{blog.name.capitalize()}",
            blog_id=blog.blog_id,
        )
        used_names.add(mirror.name)
        for source_item in blog.items:
            if source_item.kind not in ("original", "related"):
                continue
            link = url_variant(source_item.link, "feedproxy", rng, feed_name=blog.name)
            token = link.rstrip("/").rsplit("/", 2)[-2]
            flare = FEEDFLARE.format(name=blog.name.capitalize(), token=token)
            body = (source_item.content_html + flare) if source_item.content_html else None
            mirror.items.append(Item(
                guid=source_item.guid, title=source_item.title, link=link,
                published=source_item.published, author=source_item.author,
                category=source_item.category, content_html=body,
                summary_html=source_item.summary_html,
                text_chars=len(_html_text(body or source_item.summary_html)),
                article=source_item.article, kind="url_variant",
                variant="feedproxy+origlink+same_date", post_id=source_item.post_id,
                orig_link=source_item.link,
            ))
        feeds_out.append(mirror)

    for feed in feeds_out:
        feed.items.sort(key=lambda item: item.published, reverse=True)
    return Corpus(feeds=feeds_out, articles=articles, related=related, originals=originals,
                  seed=seed)


# =========================================================================== writing

RSS_NAMESPACES = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"'
)
FEEDBURNER_NS = 'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"'
#: Blogs of the corpus keep Central European winter time or UTC.
ZONES = {"nl": timedelta(hours=1), "de": timedelta(hours=1), "en": timedelta(0)}
COMMENT_BY = {"nl": "Door: ", "de": "Von: ", "en": "By: "}


def _rfc822(moment: datetime, language: str) -> str:
    return format_datetime(moment.astimezone(timezone(ZONES[language])))


def _rfc3339(moment: datetime, language: str) -> str:
    return moment.astimezone(timezone(ZONES[language])).isoformat()


def _x(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def render_rss(feed: Feed) -> str:
    newest = max((i.published for i in feed.items), default=EPOCH)
    namespaces = RSS_NAMESPACES + (" " + FEEDBURNER_NS if feed.kind == "mirror" else "")
    lang = VOCABULARIES[feed.language]
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<rss version=\"2.0\" {namespaces}>",
        "<channel>",
        f"<title>{_x(feed.title)}</title>",
        f'<atom:link href="{BASE}{_x(feed.path)}" rel="self" type="application/rss+xml"/>',
        f"<link>{_x(feed.site)}/</link>",
        f"<description>{_x(lang.topics[TOPIC_KEYS[0]].category)} &amp; marketing</description>",
        f"<lastBuildDate>{_rfc822(newest, feed.language)}</lastBuildDate>",
    ]
    if feed.declared_language:
        out.append(f"<language>{feed.declared_language}</language>")
    out.append("<generator>https://wordpress.org/?v=3.5.1</generator>")
    for item in feed.items:
        entry = [
            "<item>",
            f"<title>{_x(item.title)}</title>",
            f"<link>{_x(item.link)}</link>",
            f"<pubDate>{_rfc822(item.published, feed.language)}</pubDate>",
            f"<dc:creator>{_x(item.author)}</dc:creator>",
            f"<category>{_x(item.category)}</category>",
            f'<guid isPermaLink="false">{_x(item.guid)}</guid>',
            f"<description>{_x(item.summary_html)}</description>",
        ]
        if item.content_html is not None:
            entry.append(f"<content:encoded>{_x(item.content_html)}</content:encoded>")
        if item.comment_feed_path:
            entry.append(f"<comments>{_x(item.link)}#comments</comments>")
            entry.append(f"<wfw:commentRss>{BASE}{_x(item.comment_feed_path)}</wfw:commentRss>")
            entry.append(f"<slash:comments>{len(item.comments)}</slash:comments>")
        if item.orig_link:
            entry.append(f"<feedburner:origLink>{_x(item.orig_link)}</feedburner:origLink>")
        entry.append("</item>")
        out.extend(entry * item.times)
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out)


def _atom_id(feed: Feed) -> str:
    if feed.style == "blogger":
        return f"tag:blogger.com,1999:blog-{feed.blog_id}"
    return f"{feed.site}/"


def render_atom(feed: Feed) -> str:
    newest = max((i.published for i in feed.items), default=EPOCH)
    lang_attr = f' xml:lang="{feed.declared_language}"' if feed.declared_language else ""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" '
        f'xmlns:thr="http://purl.org/syndication/thread/1.0"{lang_attr}>',
        f"<id>{_x(_atom_id(feed))}</id>",
        f"<updated>{_rfc3339(newest, feed.language)}</updated>",
        f'<title type="text">{_x(feed.title)}</title>',
        f'<link rel="alternate" type="text/html" href="{_x(feed.site)}/"/>',
        f'<link rel="self" type="application/atom+xml" href="{BASE}{_x(feed.path)}"/>',
        f"<generator>{'Blogger' if feed.style == 'blogger' else 'Hugo'}</generator>",
    ]
    for item in feed.items:
        body = (f'<content type="html">{_x(item.content_html)}</content>'
                if item.content_html is not None
                else f'<summary type="html">{_x(item.summary_html)}</summary>')
        entry = [
            "<entry>",
            f"<id>{_x(item.guid)}</id>",
            f"<published>{_rfc3339(item.published, feed.language)}</published>",
            f"<updated>{_rfc3339(item.published, feed.language)}</updated>",
            f'<category term="{_x(item.category)}"/>',
            f'<title type="text">{_x(item.title)}</title>',
            body,
            f'<link rel="alternate" type="text/html" href="{_x(item.link)}"/>',
            f"<author><name>{_x(item.author)}</name></author>",
        ]
        if item.comment_feed_path:
            entry.append(f'<link rel="replies" type="application/atom+xml" '
                         f'href="{BASE}{_x(item.comment_feed_path)}" '
                         f'thr:count="{len(item.comments)}"/>')
        entry.append("</entry>")
        out.extend(entry * item.times)
    out += ["</feed>", ""]
    return "\n".join(out)


def render_comments(feed: Feed, item: Item) -> tuple[str, str]:
    """The comment feed of ``item``: its text and content type."""
    lang = VOCABULARIES[feed.language]
    title = lang.comment_feed_title.format(title=item.title)
    if feed.format == "atom":
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:thr="http://purl.org/syndication/thread/1.0">',
            f"<id>{_x(item.guid)}.comments</id>",
            f"<updated>{_rfc3339(item.published, feed.language)}</updated>",
            f'<title type="text">{_x(title)}</title>',
            f'<link rel="alternate" type="text/html" href="{_x(item.link)}"/>',
            f'<link rel="self" type="application/atom+xml" '
            f'href="{BASE}{_x(item.comment_feed_path or "")}"/>',
        ]
        for comment in item.comments:
            out += [
                "<entry>",
                f"<id>{_x(comment.guid)}</id>",
                f"<published>{_rfc3339(comment.published, feed.language)}</published>",
                f"<updated>{_rfc3339(comment.published, feed.language)}</updated>",
                f'<title type="text">{_x(comment.text[:40])}</title>',
                f'<content type="html">{_x("<p>" + html.escape(comment.text) + "</p>")}</content>',
                f'<link rel="alternate" type="text/html" href="{_x(comment.link)}"/>',
                f"<author><name>{_x(comment.author)}</name></author>",
                f'<thr:in-reply-to ref="{_x(item.guid)}" href="{_x(item.link)}" '
                f'type="text/html"/>',
                "</entry>",
            ]
        out += ["</feed>", ""]
        return "\n".join(out), ATOM_TYPE
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<rss version=\"2.0\" {RSS_NAMESPACES}>",
        "<channel>",
        f"<title>{_x(title)}</title>",
        f'<atom:link href="{BASE}{_x(item.comment_feed_path or "")}" rel="self" '
        'type="application/rss+xml"/>',
        f"<link>{_x(item.link)}</link>",
        f"<description>{_x(feed.title)}</description>",
    ]
    for comment in item.comments:
        out += [
            "<item>",
            f"<title>{_x(COMMENT_BY[feed.language] + comment.author)}</title>",
            f"<link>{_x(comment.link)}</link>",
            f"<dc:creator>{_x(comment.author)}</dc:creator>",
            f"<pubDate>{_rfc822(comment.published, feed.language)}</pubDate>",
            f'<guid isPermaLink="false">{_x(comment.guid)}</guid>',
            f"<description>{_x(comment.text)}</description>",
            f"<content:encoded>{_x('<p>' + html.escape(comment.text) + '</p>')}</content:encoded>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out), RSS_TYPE


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def labels_of(corpus: Corpus) -> dict[str, Any]:
    """labels.json: every (feed path, guid) with its article, kind and expected canonical."""
    appearances: list[dict[str, Any]] = []
    comments: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    original_keys = {article_id: (feed.path, item.guid)
                     for article_id, (feed, item) in corpus.originals.items()}
    for feed in corpus.feeds:
        for item in feed.items:
            key = (feed.path, item.guid)
            if key in seen:
                raise AssertionError(f"two items share feed and guid: {key}")
            seen.add(key)
            appearances.append({
                "feed": feed.path, "guid": item.guid, "article": item.article,
                "kind": item.kind, "variant": item.variant, "language": feed.language,
                "text_chars": item.text_chars, "link": item.link, "title": item.title,
                "published": item.published.isoformat(),
                "canonical": original_keys[item.article] == key, "times": item.times,
            })
            for comment in item.comments:
                comments.append({
                    "feed": item.comment_feed_path, "guid": comment.guid,
                    "article": item.article, "post_feed": feed.path, "post_guid": item.guid,
                })
    articles = {}
    for article_id, article in corpus.articles.items():
        feed, item = corpus.originals[article_id]
        articles[article_id] = {
            "language": article.language, "subject": article.subject, "title": article.title,
            "related_to": corpus.related.get(article_id),
            "original": {"feed": feed.path, "guid": item.guid, "link": item.link},
        }
    return {
        "format": 1,
        "seed": corpus.seed,
        "feeds": [
            {"path": f.path, "name": f.name, "kind": f.kind, "format": f.format,
             "language": f.language, "declared_language": f.declared_language,
             "title": f.title, "site": f.site}
            for f in corpus.feeds
        ],
        "articles": articles,
        "appearances": appearances,
        "comments": comments,
    }


def write(corpus: Corpus, out_dir: Path) -> dict[str, Any]:
    """Write feeds, comment feeds, manifest.json and labels.json; returns the labels."""
    out_dir.mkdir(parents=True, exist_ok=True)
    documents: dict[str, dict[str, str]] = {}
    for feed in corpus.feeds:
        text = render_rss(feed) if feed.format == "rss" else render_atom(feed)
        file = Path("feeds") / f"{feed.name}.xml"
        _write_text(out_dir / file, text)
        newest = max((i.published for i in feed.items), default=EPOCH)
        documents[feed.path] = {
            "file": file.as_posix(),
            "content_type": RSS_TYPE if feed.format == "rss" else ATOM_TYPE,
            "last_modified": _http_date(newest),
        }
        for item in feed.items:
            if not item.comment_feed_path:
                continue
            text, content_type = render_comments(feed, item)
            file = Path("comments") / feed.name / f"{item.post_id}.xml"
            _write_text(out_dir / file, text)
            newest_comment = max(c.published for c in item.comments)
            documents[item.comment_feed_path] = {
                "file": file.as_posix(), "content_type": content_type,
                "last_modified": _http_date(newest_comment),
            }
    manifest = {
        "_comment": "URL path -> corpus file; {{BASE}} in files is the server's "
                    "http://127.0.0.1:PORT. Written by bench/dedupe_corpus.py.",
        "documents": documents,
    }
    _write_text(out_dir / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    labels = labels_of(corpus)
    labels["stats"] = corpus_stats(corpus)
    _write_text(out_dir / "labels.json", json.dumps(labels, indent=1, ensure_ascii=False))
    return labels


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# =========================================================================== statistics

_WORD = re.compile(r"[^\W_]+")


def shingle_jaccard(a: str, b: str, size: int = 5) -> float:
    """Jaccard similarity of the word ``size``-shingles of two texts (case-folded)."""
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = _WORD.findall(text.casefold())
        return {tuple(words[i:i + size]) for i in range(max(1, len(words) - size + 1))}

    left, right = shingles(a), shingles(b)
    return len(left & right) / len(left | right) if left or right else 1.0


def corpus_stats(corpus: Corpus) -> dict[str, Any]:
    """How alike copies and distinct articles are, so a threshold can be judged against them."""
    rng = random.Random(corpus.seed)

    def body(item: Item) -> str:
        return _html_text(item.content_html or item.summary_html)

    groups: dict[str, list[float]] = {}
    for feed in corpus.feeds:
        for item in feed.items:
            if item.kind in ("crosspost", "light_edit", "url_variant", "repeat"):
                _, original = corpus.originals[item.article]
                groups.setdefault(item.kind, []).append(
                    shingle_jaccard(body(original), body(item)))
    for sibling, article_id in corpus.related.items():
        groups.setdefault("related", []).append(shingle_jaccard(
            body(corpus.originals[sibling][1]), body(corpus.originals[article_id][1])))
    by_subject: dict[tuple[str, str], list[Item]] = {}
    for article_id, (_, item) in corpus.originals.items():
        article = corpus.articles[article_id]
        by_subject.setdefault((article.language, article.subject), []).append(item)
    pairs: list[tuple[Item, Item]] = []
    for items in by_subject.values():
        for _ in range(min(40, len(items) * (len(items) - 1) // 2)):
            left, right = rng.sample(items, 2)
            if corpus.related.get(left.article) != right.article and \
                    corpus.related.get(right.article) != left.article:
                pairs.append((left, right))
    groups["distinct_same_subject"] = [shingle_jaccard(body(a), body(b)) for a, b in pairs]

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {"pairs": 0}
        ordered = sorted(values)
        return {
            "pairs": len(values),
            "min": round(ordered[0], 3),
            "mean": round(sum(values) / len(values), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
            "max": round(ordered[-1], 3),
        }

    return {"shingle_jaccard_5": {name: summary(v) for name, v in sorted(groups.items())}}


# =========================================================================== command line


def generate(out_dir: Path, *, feeds: int = 300, seed: int = 1) -> dict[str, Any]:
    """Build the corpus for ``feeds`` and ``seed`` and write it to ``out_dir``; returns labels."""
    return write(build(feeds, seed), Path(out_dir))


def describe(labels: dict[str, Any]) -> str:
    """A few lines on what a corpus holds."""
    feed_kinds = Counter(f["kind"] for f in labels["feeds"])
    item_kinds = Counter(a["kind"] for a in labels["appearances"])
    languages = Counter(a["language"] for a in labels["appearances"])
    comment_feeds = len({c["feed"] for c in labels["comments"]})
    lines = [
        f"feeds: {len(labels['feeds'])} "
        f"({', '.join(f'{k} {n}' for k, n in sorted(feed_kinds.items()))})",
        f"articles: {len(labels['articles'])}; items: {len(labels['appearances'])} "
        f"({', '.join(f'{k} {item_kinds[k]}' for k in KINDS)})",
        f"languages of items: {', '.join(f'{k} {languages[k]}' for k in LANGUAGES)}",
        f"comment feeds: {comment_feeds} with {len(labels['comments'])} comments",
        "5-word shingle Jaccard to the original (distinct: two articles on one subject):",
    ]
    for name, figures in labels.get("stats", {}).get("shingle_jaccard_5", {}).items():
        if figures.get("pairs"):
            lines.append(f"  {name:<22} pairs {figures['pairs']:>5}  min {figures['min']:.3f}  "
                         f"mean {figures['mean']:.3f}  p95 {figures['p95']:.3f}  "
                         f"max {figures['max']:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a labelled corpus of nl/de/en marketing-blog feeds with planted "
                    "duplicates (for bench/score_dedupe.py).")
    parser.add_argument("out_dir", type=Path, help="directory to write the corpus to")
    parser.add_argument("--feeds", type=int, default=300, help="number of feeds (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.feeds < 3:
        parser.error("--feeds must be at least 3")
    labels = generate(args.out_dir, feeds=args.feeds, seed=args.seed)
    print(f"wrote {args.out_dir}")
    print(describe(labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
