"""Keyword heuristics that steer generated values towards what the input text talks about."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Stems are word prefixes of this length, so "cancel" matches "cancellation" and "booked" "book".
STEM_LENGTH = 5
MIN_TOKEN_LENGTH = 3
_TOKEN_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class CueRule:
    """A topic the text may mention.

    Attributes:
        triggers: Lower-case substrings that reveal the topic.
        hints: Words that enum values, booleans and tags about the topic tend to contain.
        polarity: Sentiment the topic suggests (-1, 0, +1).
    """

    triggers: tuple[str, ...]
    hints: tuple[str, ...]
    polarity: int


CUES: dict[str, CueRule] = {
    "refund": CueRule(
        ("refund", "money back", "charged twice"),
        ("refund", "billing", "negative", "dissatisfied", "follow"),
        -1,
    ),
    "cancel": CueRule(("cancel",), ("cancel", "cancellation", "churn", "retention", "negative", "lost"), -1),
    "appointment": CueRule(
        ("appointment", "reschedule", "book an"),
        ("appointment", "booked", "book", "schedule", "scheduled", "positive", "satisfied"),
        1,
    ),
    "complaint": CueRule(
        ("complaint", "manager", "nobody"),
        ("complaint", "escalation", "escalate", "negative", "angry", "dissatisfied", "manager"),
        -1,
    ),
    "billing": CueRule(
        ("invoice", "bill ", "payment"),
        ("billing", "invoice", "payment", "inquiry", "question", "neutral"),
        0,
    ),
    "sales": CueRule(
        ("upgrad", "quote", "price"),
        ("sales", "upgrade", "opportunity", "lead", "quote", "positive", "interested"),
        1,
    ),
    "support": CueRule(
        ("dropping", "voicemail", "log in", "portal"),
        ("support", "technical", "issue", "troubleshoot", "neutral"),
        0,
    ),
}


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens."""
    return _TOKEN_RE.findall(text.lower())


def stem(token: str) -> str:
    """Crude prefix stem."""
    return token[:STEM_LENGTH]


def stems_of(text: str) -> set[str]:
    """Stems of the tokens long enough to mean something."""
    return {stem(t) for t in tokens(text) if len(t) >= MIN_TOKEN_LENGTH}


@dataclass(frozen=True)
class TextContext:
    """What the generator knows about the input.

    Attributes:
        text: The user-supplied text (transcript), original case.
        cues: Topic keys found in the text, in `CUES` order.
        stems: Stems of the text plus the hints of its cues.
        polarity: Sum of the cue polarities, clamped to -1..1.
    """

    text: str
    cues: tuple[str, ...]
    stems: frozenset[str]
    polarity: int

    @property
    def words(self) -> list[str]:
        """The text split on whitespace, punctuation kept."""
        return self.text.split()


def build_context(text: str) -> TextContext:
    """Detect cues and collect the stems used for matching."""
    lowered = text.lower()
    cues = tuple(name for name, rule in CUES.items() if any(t in lowered for t in rule.triggers))
    stems = stems_of(text)
    for name in cues:
        stems |= {stem(h) for h in CUES[name].hints}
    polarity = sum(CUES[name].polarity for name in cues)
    return TextContext(text=text, cues=cues, stems=frozenset(stems), polarity=max(-1, min(1, polarity)))


def match_score(value: object, context: TextContext) -> int:
    """How many of the value's words the text (or its cues) mentions."""
    return sum(1 for t in tokens(str(value)) if len(t) >= MIN_TOKEN_LENGTH and stem(t) in context.stems)
