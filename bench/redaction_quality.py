"""Does redaction change the insights? The same calls analysed with privacy `off` and `redact`.

Synthesises stereo call recordings (the CloudUCM simulator's recorder, in process), serves the
bundled OpenAI simulator on loopback (its pseudo-transcripts read card numbers, phone numbers,
e-mail addresses and an SSN out in about a third of the channels, and its insights are steered by
the transcript's words), and analyses every call twice through the real `openai` client: once as
transcribed, once redacted. It reports how often the outcome, the overall and caller sentiment labels
and the intent agree, over all calls and over the calls where something was redacted, and what
redaction does to the text-model input tokens. Nothing leaves the machine. Usage:

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
from audiapro.analysis.models import AnalysisRecord, CallContext, CallInsights
from audiapro.analysis.openai_analyzer import OpenAIAnalyzer
from audiapro.analysis.openai_simulator import OpenAISimConfig, OpenAISimulator
from audiapro.analysis.redact import PrivacyPolicy, TranscriptPrivacy
from audiapro.ucm.simulator.wav import synth_wav

TENANT: Final = "bench"
API_KEY: Final = "sk-bench-redaction-quality"
DEFAULT_CALLS: Final = 200
DEFAULT_SEED: Final = 7
CALL_SECONDS: Final = (30.0, 180.0)
PERCENT: Final = 100.0
REQUEST_TIMEOUT_S: Final = 30.0


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


def _share(matches: list[bool]) -> float | None:
    return round(PERCENT * sum(matches) / len(matches), 1) if matches else None


def compare(calls: int, seed: int) -> dict[str, Any]:
    """Analyse `calls` synthetic calls with and without redaction and compare the insights."""
    rng = random.Random(seed)
    sim = OpenAISimulator(OpenAISimConfig(api_key=API_KEY, seed=seed))
    pairs: list[tuple[AnalysisRecord, AnalysisRecord]] = []
    with sim.serve() as base_url, openai.OpenAI(base_url=base_url, api_key=API_KEY) as client:
        analyzer = OpenAIAnalyzer(client, AnalyzerSettings(request_timeout_s=REQUEST_TIMEOUT_S))
        for index in range(calls):
            wav = synth_wav(f"bench-{seed}-{index}.wav", rng.uniform(*CALL_SECONDS), stereo=True)
            context = CallContext(tenant=TENANT, session=f"{index}-bench", direction="inbound")
            original = analyzer.analyze_call(
                wav, context, privacy=TranscriptPrivacy(policy=PrivacyPolicy.off)
            )
            redacted = analyzer.analyze_call(wav, context, privacy=TranscriptPrivacy())
            if original.insights is not None and redacted.insights is not None:
                pairs.append((original, redacted))
    touched = [(o, r) for o, r in pairs if sum((r.redactions or {}).values())]
    figures: dict[str, Any] = {"calls": calls, "compared": len(pairs), "calls_with_redactions": len(touched)}
    for name, subset in (("all", pairs), ("redacted", touched)):
        for field in ("outcome", "sentiment", "caller_sentiment", "intent"):
            matches = [
                _labels(o.insights)[field] == _labels(r.insights)[field]  # type: ignore[arg-type]
                for o, r in subset
            ]
            figures[f"{name}_{field}_agreement_pct"] = _share(matches)
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
