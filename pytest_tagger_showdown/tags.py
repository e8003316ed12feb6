"""Tag and rating vocabulary: Danbooru's categories and the normalisation every tagger's output goes through.

Taggers spell the same tag differently (``long hair`` vs ``long_hair``) and name ratings in three
vocabularies (Danbooru's ``g/s/q/e``, WD14's ``general/sensitive/...`` keys, DeepDanbooru's pre-2022
``rating:safe``); scoring compares normalised names only.
"""

from __future__ import annotations

import functools
import sys
from enum import StrEnum
from typing import Final


class TagCategory(StrEnum):
    GENERAL = "general"
    CHARACTER = "character"
    COPYRIGHT = "copyright"
    ARTIST = "artist"
    META = "meta"


#: Danbooru's numeric tag categories (``/tags.json`` ``category``; WD14's ``selected_tags.csv``).
DANBOORU_CATEGORY_IDS: Final[dict[int, TagCategory]] = {
    0: TagCategory.GENERAL,
    1: TagCategory.ARTIST,
    3: TagCategory.COPYRIGHT,
    4: TagCategory.CHARACTER,
    5: TagCategory.META,
}

#: Danbooru's ratings since 2022, in order.
RATINGS: Final[tuple[str, ...]] = ("g", "s", "q", "e")
RATING_NAMES: Final[dict[str, str]] = {
    "g": "general",
    "s": "sensitive",
    "q": "questionable",
    "e": "explicit",
}
#: A pre-2022 ``rating:safe`` prediction: today's general or sensitive.
SAFE: Final = "safe"
#: Which true ratings a predicted rating code counts as correct for.
RATING_MATCHES: Final[dict[str, frozenset[str]]] = {
    **{code: frozenset({code}) for code in RATINGS},
    SAFE: frozenset({"g", "s"}),
}

_RATING_ALIASES: Final[dict[str, str]] = {
    **{code: code for code in RATINGS},
    **{name: code for code, name in RATING_NAMES.items()},
    SAFE: SAFE,
}


@functools.lru_cache(maxsize=1 << 14)
def normalize_tag(name: str) -> str:
    """Danbooru's spelling of a tag: lower case, underscores for spaces, no surrounding blanks.
    Interned: 30,000 posts' results hold each tag name once, not once per post. Remembered (the
    last 16,384 names, a WD14 tag list and more, at most about 5 MB): scoring spells each post's
    predicted tags again, which took a quarter of its time (issue 14)."""
    return sys.intern("_".join(name.strip().lower().split(" ")))


def normalize_rating(value: str) -> str | None:
    """The rating code (``g``, ``s``, ``q``, ``e`` or ``safe``) a rating name means, or None if it is not one.

    Accepts ``g``, ``general``, ``rating:general``, ``rating_general``, ``rating:safe`` and the like.
    """
    text = value.strip().lower()
    for prefix in ("rating:", "rating_", "rating "):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    return _RATING_ALIASES.get(text)


def rating_is_right(predicted: str, truth: str) -> bool:
    """Whether a predicted rating counts as right on a post rated ``truth`` (a code: g, s, q, e).

    The one place this rule lives: ``predicted`` is read with :func:`normalize_rating`, and a
    pre-2022 ``safe`` is right on a g or an s post (:data:`RATING_MATCHES`).
    """
    code = normalize_rating(predicted)
    return code is not None and truth in RATING_MATCHES[code]


def predicted_rating_tag(predicted: str, truth: str) -> str:
    """The pseudo-tag a predicted rating counts as: the post's own rating tag when it is right (so a
    right ``safe`` matches ``rating:g``), else the predicted one."""
    return rating_tag(truth if rating_is_right(predicted, truth) else predicted)


def rating_tag(code: str) -> str:
    """The pseudo-tag a rating counts as in the ground truth (the study counts the rating as a tag)."""
    return f"rating:{code}"


def parse_categories(text: str) -> frozenset[TagCategory]:
    """Parse ``--showdown-categories``: ``all``, ``general+character`` or a comma/plus separated list."""
    cleaned = text.strip().lower()
    if cleaned in ("", "all"):
        return frozenset(TagCategory)
    names = [part.strip() for part in cleaned.replace("+", ",").split(",") if part.strip()]
    try:
        return frozenset(TagCategory(name) for name in names)
    except ValueError:
        known = ", ".join(c.value for c in TagCategory)
        raise ValueError(f"unknown tag category in {text!r}; known: all, {known}") from None
