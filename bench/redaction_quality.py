"""Does redaction change the insights? The same calls analysed with privacy `off` and `redact`.

Synthesises stereo call recordings (the CloudUCM simulator's recorder, in process), serves the
bundled OpenAI simulator on loopback (its pseudo-transcripts read card numbers, phone numbers,
e-mail addresses and an SSN out in about a third of the channels, and its insights are steered by
the transcript's words), and analyses every call twice through the real `openai` client: once as
transcribed, once redacted. It reports how often the outcome, the overall and caller sentiment labels
and the intent agree, over all calls and over the calls where something was redacted, and what
redaction does to the text-model input tokens.

The simulator seeds its answer with the whole prompt, so any change of the text (not only a loss of
meaning) can flip a label its cue words leave open. The control measures that floor: the same calls
with every redacted item replaced by *other* data of the same kind (another test card, phone, e-mail,
SSN), which tells the model exactly as much as the original. Redaction costs quality only where its
agreement falls below the control's. Nothing leaves the machine. Usage:

    .venv/bin/python bench/redaction_quality.py [--calls 200] [--seed 7]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any, Final

import openai

from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.models import AnalysisRecord, CallContext, CallInsights, Transcript, TranscriptSegment
from audiapro.analysis.openai_analyzer import OpenAIAnalyzer
from audiapro.analysis.openai_simulator import OpenAISimConfig, OpenAISimulator
from audiapro.analysis.redact import PLACEHOLDERS, Category, PrivacyPolicy, TranscriptPrivacy
from audiapro.ucm.simulator.wav import synth_wav

TENANT: Final = "bench"
API_KEY: Final = "sk-bench-redaction-quality"
DEFAULT_CALLS: Final = 200
DEFAULT_SEED: Final = 7
CALL_SECONDS: Final = (30.0, 180.0)
PERCENT: Final = 100.0
REQUEST_TIMEOUT_S: Final = 30.0
#: Same-kind stand-ins of the control run (test and fictional values).
STAND_INS: Final[dict[Category, str]] = {
    Category.card: "4242 4242 4242 4242",
    Category.phone: "212 555 0100",
    Category.email: "sam.lee@example.net",
    Category.ssn: "123-45-6789",
    Category.national_id: "AB 12 34 56 C",
}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    return parser.parse_args()


def _labels(insights: CallInsights) -> dict[str, Any]:
    """The insight fields compared between the two runs."""
    return {
        "outcome": insights.outcome.value,
        "sentiment": insights.sentiment.label.value,
        "caller_sentiment": insights.caller_sentiment.label.value if insights.caller_sentiment else None,
        "intent": insights.intent,
    }


def _stand_ins(redacted: Transcript) -> Transcript:
    """The redacted transcript with each placeholder replaced by other data of the same kind."""

    def fill(text: str) -> str:
        for category, placeholder in PLACEHOLDERS.items():
            text = text.replace(placeholder, STAND_INS[category])
        return text

    segments = [
        TranscriptSegment(speaker=s.speaker, text=fill(s.text), start_s=s.start_s, end_s=s.end_s)
        for s in redacted.segments
    ]
    return Transcript.from_segments(segments, mode=redacted.mode, language=redacted.language)


def _share(matches: list[bool]) -> float | None:
    return round(PERCENT * sum(matches) / len(matches), 1) if matches else None


def compare(calls: int, seed: int) -> dict[str, Any]:
    """Analyse `calls` synthetic calls with and without redaction and compare the insights."""
    rng = random.Random(seed)
    sim = OpenAISimulator(OpenAISimConfig(api_key=API_KEY, seed=seed))
    pairs: list[tuple[AnalysisRecord, AnalysisRecord]] = []
    controls: list[tuple[CallInsights, CallInsights]] = []
    with sim.serve() as base_url, openai.OpenAI(base_url=base_url, api_key=API_KEY) as client:
        analyzer = OpenAIAnalyzer(client, AnalyzerSettings(request_timeout_s=REQUEST_TIMEOUT_S))
        for index in range(calls):
            wav = synth_wav(f"bench-{seed}-{index}.wav", rng.uniform(*CALL_SECONDS), stereo=True)
            context = CallContext(tenant=TENANT, session=f"{index}-bench", direction="inbound")
            original = analyzer.analyze_call(
                wav, context, privacy=TranscriptPrivacy(policy=PrivacyPolicy.off)
            )
            redacted = analyzer.analyze_call(wav, context, privacy=TranscriptPrivacy())
            if original.insights is None or redacted.insights is None or redacted.transcript is None:
                continue
            pairs.append((original, redacted))
            if sum((redacted.redactions or {}).values()):
                control = analyzer.analyze(_stand_ins(redacted.transcript), context)
                controls.append((original.insights, control))
    touched = [(o, r) for o, r in pairs if sum((r.redactions or {}).values())]
    figures: dict[str, Any] = {"calls": calls, "compared": len(pairs), "calls_with_redactions": len(touched)}
    untouched = [(o, r) for o, r in pairs if not sum((r.redactions or {}).values())]
    for name, subset in (("all", pairs), ("redacted", touched), ("unredacted", untouched)):
        for field in ("outcome", "sentiment", "caller_sentiment", "intent"):
            matches = [
                _labels(o.insights)[field] == _labels(r.insights)[field]  # type: ignore[arg-type]
                for o, r in subset
            ]
            figures[f"{name}_{field}_agreement_pct"] = _share(matches)
    for field in ("outcome", "sentiment", "caller_sentiment", "intent"):
        control_matches = [_labels(o)[field] == _labels(c)[field] for o, c in controls]
        figures[f"control_{field}_agreement_pct"] = _share(control_matches)
    tokens = [(o.input_tokens, r.input_tokens) for o, r in touched]
    figures["redacted_input_token_change_pct"] = (
        round(PERCENT * (sum(r for _, r in tokens) / sum(o for o, _ in tokens) - 1), 2) if tokens else None
    )
    totals: dict[str, int] = {}
    for _, record in touched:
        for category, count in (record.redactions or {}).items():
            totals[category] = totals.get(category, 0) + count
    figures["redactions"] = totals
    return figures


def main() -> None:
    """Run the comparison and print it."""
    args = _args()
    figures = compare(args.calls, args.seed)
    print(f"{figures['compared']} calls compared, {figures['calls_with_redactions']} with redactions")
    for key, value in figures.items():
        if key.endswith("_pct"):
            print(f"  {key}: {value}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
