"""Theme titles. Offline: the words that set a theme apart from the others (class-based
TF-IDF), plus its most representative submission as the example."""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

log = logging.getLogger(__name__)

# Words every frontline message uses; they never tell one problem from another.
CHAT_STOP_WORDS = frozenset(
    "cx customer customers client clients caller callers agent agents pls please just like "
    "really get got getting today yesterday week again still even also want wants wanted need "
    "needs needed told tell says said asked ask keep keeps kept people guy lady team us "
    "ve ll don didn doesn isn wasn aren t s m re d lol omg ok okay thing things time times "
    "email phone card account id number day days hour hours minute minutes every literally "
    "going make makes made know way lot lots one two three".split()
)
STOP_WORDS = list(ENGLISH_STOP_WORDS | CHAT_STOP_WORDS)
MAX_TITLE_WORDS = 6
# A title is made again only when a theme's size changed by this factor since it was named.
RENAME_GROWTH = 1.5


@dataclass(frozen=True)
class ThemeName:
    title: str
    summary: str


class Namer(Protocol):
    def name(self, groups: Sequence[Sequence[str]]) -> list[ThemeName]:
        """One name per group of representative texts (most representative first)."""
        ...


class TitleModel(Protocol):
    """A language model that proposes a name; it may fail, time out or misbehave."""

    def propose(self, texts: Sequence[str]) -> ThemeName: ...


MARKUP = re.compile(r"[<>@#*_`\[\]{}|]|https?:|www\.|\n")


def grounded(title: str, texts: Sequence[str]) -> bool:
    """Most of the title's words must appear in at least two of the texts (one, if there is
    only one): a single submission cannot put its own words into a theme's title."""
    words = [w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 2 and w not in ENGLISH_STOP_WORDS]
    if not words:
        return False
    needed = 2 if len(texts) > 1 else 1
    stems = [{w[:4] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2} for text in texts]
    supported = sum(1 for w in words if sum(w[:4] in s for s in stems) >= needed)
    return supported * 2 >= len(words)


def validated(name: ThemeName, texts: Sequence[str]) -> ThemeName | None:
    """A model's name, tidied, or None when it breaks a rule."""
    title = " ".join(name.title.split()).strip(" .\"'")
    summary = " ".join(name.summary.split())
    if not title or len(title.split()) > MAX_TITLE_WORDS or len(title) > 80 or MARKUP.search(title):
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
        log.warning("theme naming model failed (%s); using the keyword title", type(error).__name__)
        return fallback, False
    if proposed is None:
        log.warning("theme naming model gave an invalid or ungrounded name; using the keyword title")
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


class KeywordNamer:
    """Deterministic titles from the words that are frequent in a theme and rare elsewhere."""

    def __init__(self, words: int = 3):
        self.words = words

    def name(self, groups: Sequence[Sequence[str]]) -> list[ThemeName]:
        documents = [" ".join(texts) for texts in groups]
        try:
            vectorizer = CountVectorizer(
                stop_words=STOP_WORDS, ngram_range=(1, 2), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b"
            )
            counts = vectorizer.fit_transform(documents).astype(np.float64)
        except ValueError:  # nothing but stop words anywhere
            return [ThemeName(_fallback(texts), _example(texts)) for texts in groups]
        vocabulary = vectorizer.get_feature_names_out()
        # c-TF-IDF: term frequency within the theme, weighted by rarity across themes.
        frequency = counts.multiply(1 / np.maximum(counts.sum(axis=1), 1)).tocsr()
        average_words = counts.sum() / max(len(documents), 1)
        idf = np.log(1 + average_words / np.maximum(np.asarray(counts.sum(axis=0)).ravel(), 1))
        scores = frequency.multiply(idf).tocsr()
        names = []
        for row, texts in enumerate(groups):
            line = scores.getrow(row).toarray().ravel()
            chosen: list[str] = []
            for index in np.argsort(-line, kind="stable"):
                if line[index] <= 0 or len(chosen) >= self.words:
                    break
                term = str(vocabulary[index])
                if any(term in c or c in term for c in chosen):
                    continue  # "refund" beside "refund approval" says nothing new
                chosen.append(term)
            title = " · ".join(chosen) if chosen else _fallback(texts)
            names.append(ThemeName(_clip_title(title.capitalize()), _example(texts)))
        return names


def _clip_title(title: str) -> str:
    words = title.split()
    return " ".join(words[: MAX_TITLE_WORDS + 2])[:120]


def _fallback(texts: Sequence[str]) -> str:
    words = re.findall(r"[A-Za-z']+", texts[0] if texts else "")
    return " ".join(words[:MAX_TITLE_WORDS]).capitalize() or "Untitled"


def _example(texts: Sequence[str]) -> str:
    return (texts[0] if texts else "")[:500]
