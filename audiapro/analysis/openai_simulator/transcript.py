"""Deterministic pseudo-transcripts built from a small call-centre vocabulary.

The audio hash picks a call *scenario* (refund, cancellation, appointment, complaint ...) whose cue
words appear early in the text, so downstream analysis sees varied but reproducible outcomes. Text
length is proportional to the voiced duration; silent windows produce no words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from audiapro.analysis.openai_simulator.audio import AudioInfo
from audiapro.analysis.openai_simulator.util import seeded_rng

GREETINGS: tuple[str, ...] = (
    "Thank you for calling customer service, this is Alex speaking.",
    "Good morning, you're through to the support team, how can I help?",
    "Hello, thanks for holding, who am I speaking with today?",
)

SCENARIOS: dict[str, tuple[str, ...]] = {
    "refund": (
        "I was charged twice and I would like a refund please.",
        "Can you process a refund to my original card?",
        "The product arrived broken so I want my money back as a refund.",
        "How long does the refund take to show up on my statement?",
    ),
    "cancel": (
        "I want to cancel my subscription effective today.",
        "Please cancel the contract, I'm moving to another provider.",
        "Is there a fee if I cancel before the end of the term?",
        "I already asked to cancel last month and I'm still being billed.",
    ),
    "appointment": (
        "I'd like to book an appointment for next Tuesday morning.",
        "Do you have any appointment slots available this week?",
        "Can we reschedule my appointment to Thursday afternoon?",
        "Great, the appointment is confirmed for ten thirty.",
    ),
    "complaint": (
        "I want to make a formal complaint about the service.",
        "This is the third time I've called and nobody has fixed it.",
        "The technician never showed up and nobody called me.",
        "I'd like to speak to a manager about this complaint.",
    ),
    "billing": (
        "I have a question about the invoice I received this month.",
        "Why is my bill higher than usual?",
        "Can you update the payment method on my account?",
    ),
    "sales": (
        "I'm interested in upgrading to the business plan.",
        "What would the price be for five more extensions?",
        "Can you send me a quote by email?",
    ),
    "support": (
        "My phone keeps dropping calls after a few minutes.",
        "The voicemail light is on but there are no messages.",
        "I can't log in to the customer portal.",
    ),
}

GENERIC_PHRASES: tuple[str, ...] = (
    "Let me pull up your account.",
    "Could you confirm the phone number on the account?",
    "One moment please while I check.",
    "Okay, I see what happened here.",
    "Sure, no problem.",
    "Can you spell your last name for me?",
    "I understand, let me look into that for you.",
    "Alright, that's all done for you.",
    "Is there anything else I can help you with?",
    "Thank you, have a great day.",
)

# Share of phrases drawn from the scenario bank rather than the generic one.
SCENARIO_PHRASE_SHARE = 0.45
# Mono turns last this many windows before the other speaker talks.
MIN_TURN_WINDOWS, MAX_TURN_WINDOWS = 1, 3
DEFAULT_SPEAKERS: tuple[str, ...] = ("A", "B")


@dataclass(frozen=True)
class TranscriptSegment:
    """A speaker turn.

    Attributes:
        start: Start time in seconds.
        end: End time in seconds.
        speaker: Speaker label (`A`, `B` ... or a known speaker name).
        text: Words spoken in the turn.
    """

    start: float
    end: float
    speaker: str
    text: str


@dataclass(frozen=True)
class PseudoTranscript:
    """The generated transcript.

    Attributes:
        scenario: Scenario key chosen from the audio hash (see `SCENARIOS`).
        segments: Speaker turns in time order.
    """

    scenario: str
    segments: tuple[TranscriptSegment, ...]

    @property
    def text(self) -> str:
        """All turns joined with spaces (empty for silence)."""
        return " ".join(s.text for s in self.segments)


def _word_stream(seed: int, digest: str, scenario: str) -> Iterator[str]:
    rng = seeded_rng("words", seed, digest)
    yield from rng.choice(GREETINGS).split()
    # The first scenario phrase comes right after the greeting so even short calls carry the cue.
    bank = SCENARIOS[scenario]
    yield from rng.choice(bank).split()
    while True:
        source = bank if rng.random() < SCENARIO_PHRASE_SHARE else GENERIC_PHRASES
        yield from rng.choice(source).split()


def _speakers_for_windows(info: AudioInfo, seed: int, labels: Sequence[str]) -> list[str]:
    if info.channels >= 2 and info.decoded:
        # One leg per channel: the loudest channel is the talker.
        return [labels[w.channel % len(labels)] for w in info.windows]
    rng = seeded_rng("turns", seed, info.digest)
    speakers: list[str] = []
    current = 0
    while len(speakers) < len(info.windows):
        speakers.extend([labels[current % len(labels)]] * rng.randint(MIN_TURN_WINDOWS, MAX_TURN_WINDOWS))
        current += 1
    return speakers[: len(info.windows)]


def pseudo_transcript(
    info: AudioInfo, *, seed: int, words_per_second: float, speakers: Sequence[str] = ()
) -> PseudoTranscript:
    """Build the transcript of an upload.

    Args:
        info: The inspected audio.
        seed: Simulator seed (same seed + same bytes = same text).
        words_per_second: Speech rate.
        speakers: Known speaker names; defaults to `A`, `B`.

    Returns:
        Scenario and speaker turns; no turns when the audio is silent.
    """
    scenario = seeded_rng("scenario", seed, info.digest).choice(sorted(SCENARIOS))
    labels = tuple(speakers) or DEFAULT_SPEAKERS
    words = _word_stream(seed, info.digest, scenario)
    window_speakers = _speakers_for_windows(info, seed, labels)
    segments: list[TranscriptSegment] = []
    pending: list[tuple[float, float, str]] = []  # voiced windows of the current turn

    def flush() -> None:
        if not pending:
            return
        start, end, speaker = pending[0][0], pending[-1][1], pending[0][2]
        count = max(1, round((end - start) * words_per_second))
        segments.append(TranscriptSegment(start, end, speaker, " ".join(next(words) for _ in range(count))))
        pending.clear()

    for window, speaker in zip(info.windows, window_speakers, strict=True):
        if not window.voiced or (pending and pending[-1][2] != speaker):
            flush()
        if window.voiced:
            pending.append((window.start, window.end, speaker))
    flush()
    return PseudoTranscript(scenario, tuple(segments))
