"""Theme titles. Offline: a short phrase taken from a theme's most representative submissions,
every content word of which at least two of its reporters used, chosen among the candidates by
the embedding model as the one that best points to its own theme among all themes. Optionally a
language model proposes a title, kept only when it passes the same grounding."""

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import snowballstemmer
from scipy.special import logsumexp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from digests.embeddings import normalise

log = logging.getLogger(__name__)

# Words every frontline message uses; they never tell one problem from another. Domain nouns
# (card, account, phone, email, day) are not here: they are what tells a bank's themes apart.
CHAT_STOP_WORDS = frozenset(
    "cx customer customers client clients caller callers agent agents pls please just like "
    "really get got getting today yesterday again still even also want wants wanted need "
    "needs needed told tell says said asked ask keep keeps kept people guy lady team us "
    "ve ll don didn doesn isn wasn aren t s m re d lol omg ok okay thing things every literally "
    "going make makes made know way lot lots".split()
)
# scikit-learn's English list is an old search-engine list: beside function words it holds nouns,
# verbs and adjectives that name a problem ("water bill due", "call", "find my phone", "name",
# "fire", "system", "interest"). Those are content words here: they may stand in a title, and
# like any content word only when two reporters used them. Light verbs ("get", "take", "put",
# "keep") and quantities stay stop words.
NAMING_WORDS = frozenset(
    "amount bill bottom call cry describe detail due empty fill find fire found front full interest "
    "move name part serious show side system thick thin top".split()
)
STOP_WORDS = list((ENGLISH_STOP_WORDS - NAMING_WORDS) | CHAT_STOP_WORDS)
_STOP = frozenset(STOP_WORDS)
PRONOUN_I = {"i": "I", "i'm": "I'm", "i've": "I've", "i'd": "I'd", "i'll": "I'll"}
MAX_TITLE_WORDS = 8
# A model's title stays as short as before: it has no submission's word order to lean on.
MAX_MODEL_TITLE_WORDS = 6
# How many of the best phrases by word support the embedding model chooses among (each is
# embedded: this bounds naming's time), and how many phrases a name keeps in all (the rest are
# alternatives when another theme has the title).
SHORTLIST = 8
PHRASES_KEPT = 8
# The temperature of the choice: a phrase is read as a classifier over every theme's centre, the
# softmax of its cosine similarities divided by this. At 0.1 a phrase 0.1 closer to one centre
# than to another is e times as likely to be read as that theme: about the margin that tells
# neighbouring themes apart. (0.02 to 0.2 scored within two points of each other on held-out
# CLINC150 samples.)
TEMPERATURE = 0.1
# A title is made again only when a theme's size changed by this factor since it was named.
RENAME_GROWTH = 1.5


@dataclass(frozen=True)
class ThemeName:
    title: str  # empty when no phrase is grounded in two reporters' words yet
    summary: str
    # Further phrases, best first, for when another open theme already has the title.
    alternatives: tuple[str, ...] = ()


class TitleModel(Protocol):
    """A language model that proposes a name; it may fail, time out or misbehave."""

    def propose(self, texts: Sequence[str]) -> ThemeName: ...


MARKUP = re.compile(r"[<>@#*_`\[\]{}|]|https?:|www\.|\n")


def _grounding_words(title: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 2 and w not in ENGLISH_STOP_WORDS]


def grounded(title: str, texts: Sequence[str]) -> bool:
    """Most of the title's words must appear in at least two of the texts (one, if there is
    only one): a single submission cannot put its own words into a theme's title."""
    words = _grounding_words(title)
    if not words:
        return False
    needed = 2 if len(texts) > 1 else 1
    stems = [{w[:4] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2} for text in texts]
    supported = sum(1 for w in words if sum(w[:4] in s for s in stems) >= needed)
    return supported * 2 >= len(words)


def lost_its_grounding(title: str, texts: Sequence[str]) -> bool:
    """A title its theme's reporters no longer ground (by the rule a model's title passed): its
    members changed, and the words that made it are now one person's, or nobody's."""
    return bool(_grounding_words(title)) and not grounded(title, texts)


def validated(name: ThemeName, texts: Sequence[str]) -> ThemeName | None:
    """A model's name, tidied, or None when it breaks a rule."""
    title = " ".join(name.title.split()).strip(" .\"'")
    summary = " ".join(name.summary.split())
    if not title or len(title.split()) > MAX_MODEL_TITLE_WORDS or len(title) > 80 or MARKUP.search(title):
        return None
    if not summary or len(summary) > 300 or MARKUP.search(summary) or summary.count(". ") > 0:
        return None
    if not grounded(title, texts):
        return None
    return ThemeName(title[0].upper() + title[1:], summary)


def name_with_model(model: TitleModel, texts: Sequence[str], fallback: ThemeName) -> tuple[ThemeName, bool]:
    """The model's name when it is valid, else the offline one; says which it was."""
    try:
        proposed = validated(model.propose(texts), texts)
    except Exception as error:  # timeouts, HTTP errors, unparseable output: all fall back
        log.warning("theme naming model failed (%s); using the offline title", type(error).__name__)
        return fallback, False
    if proposed is None:
        log.warning("theme naming model gave an invalid or ungrounded name; using the offline title")
        return fallback, False
    return proposed, True


def needs_name(size: int, named_size: int, locked: bool) -> bool:
    if locked:
        return False
    if named_size == 0:
        return True
    return size >= named_size * RENAME_GROWTH or size * RENAME_GROWTH <= named_size


def representative_order(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Indices of a theme's members, closest to its centre first."""
    return np.argsort(-(vectors @ centre), kind="stable")


_STEMMER = snowballstemmer.stemmer("english")  # Snowball's English (Porter2) stemmer
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def word_key(word: str) -> str:
    """A word as compared: lower case, without a possessive, stemmed: "loop", "loops", "looped"
    and "looping" are one word to the two-reporter rule and the no-repeat rule."""
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    return _STEMMER.stemWord(word)


def is_content(word: str) -> bool:
    return word.lower() not in _STOP


def supported_phrases(text: str, support: dict[str, int]) -> list[list[str]]:
    """Every run of up to MAX_TITLE_WORDS words of `text` that has a content word other than a
    number, whose content words each appear in at least two reporters' texts, and that repeats no
    word. A run starts at a content word, not after one it could have kept, with the question
    words it hangs on; it ends at a content word. A run stays inside one clause of one sentence,
    and hashtags are tags, not words of it ("#chatbot the bot loops" is not "Chatbot the bot
    loops")."""
    return [phrase for piece in BREAK.split(text) for phrase in _phrases(_WORD.findall(piece), support)]


# Where a phrase may not run on: a hashtag, the end of a sentence (not the point in "2.5" or
# "$14.50"), a line break, a word that joins two clauses ("address changed in CRM but billing").
BREAK = re.compile(r"#[\w-]+|[.!?;:]+(?=\s|$)|\n|\b(?:but|because|bc|although|though|whereas)\b", re.I)


def _phrases(words: list[str], support: dict[str, int]) -> list[list[str]]:
    phrases = []
    for first in range(len(words)):
        if not is_content(words[first]):
            continue  # "to refund …" reads worse than "refund …"
        before = words[first - 1] if first else ""
        if is_content(before) and support.get(word_key(before), 0) >= 2:
            continue  # cut off its own start ("limit on my visa" of "credit limit on my visa")
        for last in range(first, min(len(words), first + MAX_TITLE_WORDS)):
            word = words[last]
            if is_content(word) and support.get(word_key(word), 0) < 2:
                break  # one person's word: nothing longer from here can be a title
            phrase = words[first : last + 1]
            keys = [word_key(w) for w in phrase]
            if len(set(keys)) < len(keys):
                break
            if is_content(word) and any(is_content(w) and not w.isdigit() for w in phrase):  # not "45"
                lead = question_lead(words, first)
                if len(lead) + len(phrase) <= MAX_TITLE_WORDS:
                    phrases.append(lead + phrase)
    return phrases


# "How" leads a phrase from up to two words back ("how many days …"); "what" and "which" only as
# the word right before it ("what date …"): "what the weather" and "what my score" read worse than
# "weather" and "credit score".
QUESTION_LEADS = {"how": 2, "what": 1, "which": 1}


def question_lead(words: list[str], first: int) -> list[str]:
    """The question words a phrase starting at `first` hangs on ("how far …", "how many days …",
    "what date …"): without them it reads broken ("Far am I from orlando"). Only stop words lie
    between, so the lead adds no content word."""
    for back in (1, 2):
        at = first - back
        if at < 0 or not all(not is_content(w) for w in words[at + 1 : first]):
            break
        if QUESTION_LEADS.get(words[at].lower(), 0) >= back:
            return words[at:first]
    return []


class PhraseNamer:
    """Titles people can read: a phrase from a theme's most representative submissions.

    Only words that at least two of the theme's reporters used may appear (the texts of a group
    come one per person), so nobody can name a theme alone. Phrases are shortlisted by how many
    reporters used their words, weighted by how rare those words are in other themes. With an
    embedding function, each shortlisted phrase is then read as a classifier over all themes'
    centres, and the title is the phrase that points to its own theme most surely: a softmax of
    its similarities to every centre. Closeness to the own centre alone favours the words every
    theme near it shares ("my account"); the softmax asks the phrase to tell the theme from its
    neighbours, as a reader of the digest must."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray] | None = None, sources: int = 8):
        self.embed = embed
        self.sources = sources  # how many of the most representative texts phrases come from

    def name(
        self, groups: Sequence[Sequence[str]], centres: np.ndarray | None = None, wanted: Sequence[int] | None = None
    ) -> list[ThemeName]:
        """Names for the groups numbered in `wanted` (default: all), in that order. Every group
        is a theme's texts, one per reporter, most representative first; all of them are read
        for contrast. `centres`: each group's centre, for the embedding model's choice."""
        wanted = list(range(len(groups))) if wanted is None else list(wanted)
        supports = [self._support(texts) for texts in groups]
        themes_with: Counter[str] = Counter(word for support in supports for word in support)
        shortlists = [self._shortlist(groups[i], supports[i], themes_with, len(groups)) for i in wanted]
        if self.embed is not None and centres is not None and len(centres) == len(groups):
            shortlists = self._by_meaning(shortlists, normalise(centres), wanted)
        return [
            ThemeName(phrases[0] if phrases else "", _example(groups[i]), tuple(phrases[1:PHRASES_KEPT]))
            for i, phrases in zip(wanted, shortlists, strict=True)
        ]

    @staticmethod
    def _support(texts: Sequence[str]) -> dict[str, int]:
        """Content word -> how many of the texts (reporters) use it."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update({word_key(w) for w in _WORD.findall(text) if is_content(w)})
        return dict(counts)

    def _shortlist(self, texts, support, themes_with, themes: int) -> list[str]:
        reporters = max(len(texts), 1)
        weight = {
            word: count / reporters * np.log1p(themes / themes_with[word])
            for word, count in support.items()
            if count >= 2
        }
        scored: dict[str, float] = {}
        forms = usual_forms(texts)
        for text in texts[: self.sources]:
            for phrase in supported_phrases(text, support):
                score = sum(weight.get(word_key(w), 0.0) for w in phrase if is_content(w))
                title = _tidy([forms.get(w.lower(), w) for w in phrase])
                scored[title] = max(scored.get(title, 0.0), score)
        ranked = sorted(scored, key=lambda title: (-scored[title], len(title)))
        return ranked[: max(SHORTLIST, PHRASES_KEPT)]

    def _by_meaning(self, shortlists: list[list[str]], centres: np.ndarray, wanted: list[int]) -> list[list[str]]:
        """Each shortlist's first SHORTLIST phrases, by how surely they point to their own theme
        among all themes (ties, as with a single theme: by closeness to its centre)."""
        candidates = [phrase for phrases in shortlists for phrase in phrases[:SHORTLIST]]
        if not candidates:
            return shortlists
        similarities = normalise(self.embed(candidates)) @ centres.T  # phrases x themes
        logits = similarities / TEMPERATURE
        log_total = logsumexp(logits, axis=1)
        ordered, at = [], 0
        for phrases, theme in zip(shortlists, wanted, strict=True):
            head = phrases[:SHORTLIST]
            own = similarities[at : at + len(head), theme]
            surety = logits[at : at + len(head), theme] - log_total[at : at + len(head)]
            at += len(head)
            order = np.lexsort((-own, -np.round(surety, 6)))
            ordered.append([head[i] for i in order] + phrases[SHORTLIST:])
        return ordered


def usual_forms(texts: Sequence[str]) -> dict[str, str]:
    """Each word as most of the texts write it: "CRM" when most reporters wrote "CRM", whoever
    wrote the phrase the title comes from (a tie goes to the form written first)."""
    forms: dict[str, str] = {}
    for form, _ in Counter(w for text in texts for w in _WORD.findall(text)).most_common():
        forms.setdefault(form.lower(), form)
    return forms


def _tidy(words: list[str]) -> str:
    title = " ".join(PRONOUN_I.get(word.lower(), word) for word in words)  # chat's lower-case "i" as "I"
    return title[0].upper() + title[1:]


def _example(texts: Sequence[str]) -> str:
    return (texts[0] if texts else "")[:500]
