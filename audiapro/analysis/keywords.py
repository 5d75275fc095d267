"""Tenant keyword spotting (compliance phrases, products, competitors) in transcripts.

Exact mentions are counted locally, per speaker, because counting is something a language model does
unreliably and it costs nothing here. The model's own hits are kept only for configured keywords it
found although no exact mention exists (paraphrases, e.g. a recording disclosure in other words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from audiapro.analysis.models import KeywordHit, SpeakerRole, Transcript

#: At most this many keywords per tenant are used (longer lists bloat every prompt).
MAX_KEYWORDS: Final = 50
MAX_KEYWORD_CHARS: Final = 100
# gpt-transcribe keyword hints must be single-line strings without angle brackets.
_FORBIDDEN: Final = re.compile(r"[<>\r\n\t]+")
_SPACES: Final = re.compile(r"\s+")
_ROLE_ORDER: Final = {SpeakerRole.caller: 0, SpeakerRole.agent: 1, SpeakerRole.unknown: 2}


def clean_keywords(keywords: Iterable[str]) -> list[str]:
    """Usable keywords: single-line, no `<`/`>`, trimmed, de-duplicated ignoring case, capped.

    Args:
        keywords: Keywords as configured.

    Returns:
        Keywords in their first spelling and order.
    """
    seen: set[str] = set()
    cleaned: list[str] = []
    for raw in keywords:
        keyword = _SPACES.sub(" ", _FORBIDDEN.sub(" ", raw)).strip()[:MAX_KEYWORD_CHARS]
        if keyword and keyword.casefold() not in seen:
            seen.add(keyword.casefold())
            cleaned.append(keyword)
    return cleaned[:MAX_KEYWORDS]


def _pattern(keyword: str) -> re.Pattern[str]:
    # Whole words only, any whitespace between the words of a phrase, case-insensitive.
    words = r"\s+".join(re.escape(w) for w in keyword.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def spot_keywords(transcript: Transcript, keywords: Sequence[str]) -> list[KeywordHit]:
    """Count exact mentions of each keyword per speaker.

    Args:
        transcript: The transcript.
        keywords: Cleaned keywords (see `clean_keywords`).

    Returns:
        One hit per keyword and speaker with at least one mention, in keyword order then role order.
    """
    hits: list[KeywordHit] = []
    for keyword in keywords:
        pattern = _pattern(keyword)
        counts: dict[SpeakerRole, int] = {}
        for segment in transcript.segments:
            found = len(pattern.findall(segment.text))
            if found:
                counts[segment.speaker] = counts.get(segment.speaker, 0) + found
        for role in sorted(counts, key=_ROLE_ORDER.__getitem__):
            hits.append(KeywordHit(keyword=keyword, speaker=role, count=counts[role]))
    return hits


def merge_keyword_hits(
    model_hits: Sequence[KeywordHit], exact_hits: Sequence[KeywordHit], keywords: Sequence[str]
) -> list[KeywordHit]:
    """Exact hits, plus the model's hits for configured keywords that have no exact mention.

    Model hits for keywords that were not configured are dropped (the model may invent them); kept
    ones take the configured spelling.

    Args:
        model_hits: Hits reported by the model.
        exact_hits: Hits from `spot_keywords`.
        keywords: Configured (cleaned) keywords.

    Returns:
        The merged hits.
    """
    configured = {k.casefold(): k for k in keywords}
    exact = {h.keyword.casefold() for h in exact_hits}
    merged = list(exact_hits)
    seen = {(h.keyword.casefold(), h.speaker) for h in exact_hits}
    for hit in model_hits:
        key = hit.keyword.strip().casefold()
        if key in configured and key not in exact and (key, hit.speaker) not in seen:
            seen.add((key, hit.speaker))
            merged.append(hit.model_copy(update={"keyword": configured[key]}))
    return merged
