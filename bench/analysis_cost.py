"""What AI analysis costs per 1,000 calls: the default eligibility policy vs analysing every recording.

Generates one realistic weekday with the CloudUCM simulator (in process: no server, no network),
loads it through the production normalize/load path into a throwaway SQLite warehouse (calls are
built by the same SQL as in production), then prices three choices with the configured price table:

* every recorded call analysed (no policy);
* the default eligibility policy (answered, talk >= 20 s, has a recording, not internal), no cap;
* the default policy under the default daily budget (what a tenant would actually spend that day);
* the default policy with silence trimming (the default): each channel is cut down to its speech by
  the production voice-activity step before transcription.

The trimmed figure is measured in the same run: a deterministic sample of the default policy's calls
(`--trim-sample`, 0 = all) gets its recorded legs synthesized at full length by the simulator's
recording generator (stereo unless `--mono`), trimmed with `audiapro.analysis.speech`, and checked
against the simulator's speech intervals (every one must lie inside a kept span). The sample's ratio of
trimmed to untrimmed billed seconds prices the trimmed row.

Costs are estimates from recorded seconds (legs with a recording) and the price table; nothing is
measured in time. Usage:

    .venv/bin/python bench/analysis_cost.py [--calls-per-day 1000] [--seed 7] [--prices prices.json]
        [--batch] [--mono] [--transcription-model M] [--text-model M] [--trim-sample 40]

`--prices` takes a JSON `PriceTable` (`audio_per_minute`, `text_per_million`, `batch_price_factor`).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from audiapro.analysis.models import SkipReason
from audiapro.analysis.policy import REASON_COLUMN, Budget, CostEstimate, EligibilityPolicy, select_calls
from audiapro.analysis.pricing import DEFAULT_TEXT_MODEL, DEFAULT_TRANSCRIPTION_MODEL, PriceTable
from audiapro.analysis.speech import VadSettings, covers, detect_speech
from audiapro.analysis.wav import decode_wav
from audiapro.cdr.normalize import NormalizeContext, normalize_legs
from audiapro.ucm.simulator import SimulatorConfig, UcmSimulator
from audiapro.ucm.simulator.wav import speech_intervals, synth_wav
from audiapro.warehouse import RunInfo, get_engine, load_batch, read_calls, upgrade

TENANT: Final = "bench"
TIMEZONE: Final = "America/New_York"
DAY: Final = date(2026, 3, 3)  # a Tuesday
DEFAULT_CALLS_PER_DAY: Final = 1000
DEFAULT_SEED: Final = 7
PER: Final = 1000
STEREO_FACTOR: Final = 2.0  # stereo recordings are transcribed per channel: each second billed twice
MONO_FACTOR: Final = 1.0
SECONDS_PER_MINUTE: Final = 60.0
#: The simulator shortens its WAVs; only recording *metadata* (which legs are recorded, for how long)
#: matters here, so the recordings' true length is taken from the recorded legs' talk time.
NO_CAP: Final = float("inf")
#: Calls of the default policy whose recordings are synthesized and trimmed (0 = all of them).
DEFAULT_TRIM_SAMPLE: Final = 40


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls-per-day", type=int, default=DEFAULT_CALLS_PER_DAY)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--prices", type=Path, help="JSON PriceTable replacing the built-in prices")
    parser.add_argument("--transcription-model", default=DEFAULT_TRANSCRIPTION_MODEL)
    parser.add_argument("--text-model", default=DEFAULT_TEXT_MODEL)
    parser.add_argument("--batch", action="store_true", help="price the text step at the Batch API rate")
    parser.add_argument("--mono", action="store_true", help="mono recordings (each second billed once)")
    parser.add_argument(
        "--trim-sample",
        type=int,
        default=DEFAULT_TRIM_SAMPLE,
        help="calls whose recordings are synthesized and trimmed to measure the saving (0 = all)",
    )
    return parser.parse_args()


def generate_day(calls_per_day: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One simulated weekday as (calls, legs), built by the production normalize and load path."""
    sim = UcmSimulator(
        SimulatorConfig(seed=seed, calls_per_day=calls_per_day, start=DAY, days=1, tz=TIMEZONE)
    )
    raw = sim.ground_truth()
    batch = normalize_legs(raw, NormalizeContext(tenant=TENANT, timezone=TIMEZONE, source="api"))
    with tempfile.TemporaryDirectory(prefix="audiapro-bench-") as folder:
        engine = get_engine(f"sqlite:///{Path(folder) / 'warehouse.sqlite'}")
        try:
            upgrade(engine)
            load_batch(
                engine, tenant=TENANT, legs=batch.legs, rejects=batch.rejects, run=RunInfo(kind="bench")
            )
            start = datetime.combine(DAY, time(0), tzinfo=UTC) - timedelta(days=1)
            calls = read_calls(engine, TENANT, start, start + timedelta(days=3))
        finally:
            engine.dispose()
    return calls, batch.legs


def recorded_seconds(calls: pd.DataFrame, legs: pd.DataFrame) -> pd.Series:
    """Per call (aligned with `calls`), the talk seconds of its legs that carry a recording."""
    recorded = legs[pd.to_numeric(legs["recording_count"]).fillna(0) > 0]
    seconds = pd.to_numeric(recorded["billsec_s"]).fillna(0).groupby(recorded["session"]).sum()
    return calls["session"].map(seconds).fillna(0).astype(float)


def _leg_trim(name: str, seconds: float, stereo: bool, vad: VadSettings) -> tuple[float, float, float, float]:
    """Billed seconds untrimmed and trimmed, speech seconds kept and in all, of one synthetic recording."""
    audio = decode_wav(synth_wav(name, seconds, stereo=stereo))
    truth = speech_intervals(name, seconds)
    channels = [truth.caller, truth.agent] if stereo else [truth.caller + truth.agent]
    billed = kept_speech = all_speech = 0.0
    for index, intervals in enumerate(channels):
        spans = detect_speech(audio.samples[:, index], audio.sample_rate, vad)
        billed += sum(b - a for a, b in spans) + vad.join_gap_seconds * max(0, len(spans) - 1)
        all_speech += sum(b - a for a, b in intervals)
        kept_speech += sum(b - a for a, b in intervals if covers(spans, (a, b)))
    return audio.seconds * len(channels), billed, kept_speech, all_speech


def measure_trim(chosen: pd.DataFrame, legs: pd.DataFrame, sample: int, stereo: bool) -> dict[str, float]:
    """Trim the recorded legs of a deterministic sample of calls; billed seconds before and after.

    Returns:
        Sampled calls and legs, recorded seconds, billed seconds untrimmed and trimmed, their ratio
        and the share of the simulator's speech that lies inside kept spans (must be 1).
    """
    sessions = chosen["session"].tolist()
    if 0 < sample < len(sessions):
        sessions = [sessions[i] for i in np.linspace(0, len(sessions) - 1, sample).round().astype(int)]
    recorded = legs[(pd.to_numeric(legs["recording_count"]).fillna(0) > 0) & legs["session"].isin(sessions)]
    vad = VadSettings()
    untrimmed = trimmed = kept_speech = all_speech = recorded_s = 0.0
    for row in recorded.itertuples():
        seconds = float(pd.to_numeric(row.billsec_s) or 0)
        if seconds <= 0:
            continue
        before, after, kept, speech = _leg_trim(f"{row.session}-{row.Index}.wav", seconds, stereo, vad)
        untrimmed, trimmed, recorded_s = untrimmed + before, trimmed + after, recorded_s + seconds
        kept_speech, all_speech = kept_speech + kept, all_speech + speech
    return {
        "calls": len(sessions),
        "legs": len(recorded),
        "recorded_seconds": round(recorded_s, 1),
        "billed_seconds_untrimmed": round(untrimmed, 1),
        "billed_seconds_trimmed": round(trimmed, 1),
        "trimmed_ratio": round(trimmed / max(untrimmed, 1e-9), 4),
        "speech_seconds": round(all_speech, 1),
        "speech_kept": round(kept_speech / max(all_speech, 1e-9), 6),
    }


def trimmed_row(row: dict[str, Any], ratio: float) -> dict[str, Any]:
    """A priced row with its billed audio scaled by the measured trimming ratio (text unchanged)."""
    transcription = row["transcription_usd"] * ratio
    return {
        "calls": row["calls"],
        "audio_minutes": round(row["audio_minutes"] * ratio, 1),
        "transcription_usd": round(transcription, 4),
        "text_usd": row["text_usd"],
        "total_usd": round(transcription + row["text_usd"], 4),
    }


def price(seconds: pd.Series, estimate: CostEstimate, prices: PriceTable) -> dict[str, float]:
    """Calls, billed audio minutes and USD (transcription, text, total) for these recordings."""
    minutes = float(estimate.audio_minutes(seconds).sum())
    total = float(estimate.cost_usd(seconds, prices).sum())
    transcription = minutes * prices.audio_price(estimate.transcription_model)
    return {
        "calls": len(seconds),
        "audio_minutes": round(minutes, 1),
        "transcription_usd": round(transcription, 4),
        "text_usd": round(total - transcription, 4),
        "total_usd": round(total, 4),
    }


def main() -> None:
    """Generate the day, price the three choices, print the table and the JSON line."""
    args = _args()
    prices = PriceTable.model_validate_json(args.prices.read_text()) if args.prices else PriceTable()
    factor = MONO_FACTOR if args.mono else STEREO_FACTOR
    estimate = CostEstimate(
        transcription_model=args.transcription_model,
        text_model=args.text_model,
        billed_audio_per_talk_second=factor,
        batch=args.batch,
    )
    calls, legs = generate_day(args.calls_per_day, args.seed)
    calls = calls.assign(recorded_s=recorded_seconds(calls, legs))
    total_calls = len(calls)
    policy = EligibilityPolicy()
    uncapped = Budget(daily_usd=NO_CAP, estimate=estimate)
    chosen, skipped = select_calls(calls, policy, uncapped, 0.0, prices)
    capped, capped_skips = select_calls(calls, policy, Budget(estimate=estimate), 0.0, prices)
    recorded = calls[calls["recorded_s"] > 0]
    rows: dict[str, dict[str, Any]] = {
        "every_recorded_call": price(recorded["recorded_s"], estimate, prices),
        "default_policy": price(chosen["recorded_s"], estimate, prices),
        "default_policy_with_daily_budget": price(capped["recorded_s"], estimate, prices),
    }
    trim = measure_trim(chosen, legs, args.trim_sample, stereo=not args.mono)
    rows["default_policy_trimmed"] = trimmed_row(rows["default_policy"], trim["trimmed_ratio"])
    for row in rows.values():
        row["usd_per_1000_calls"] = round(row["total_usd"] / max(total_calls, 1) * PER, 4)
        row["usd_per_1000_analysed"] = round(row["total_usd"] / max(row["calls"], 1) * PER, 4)
    skips = {reason.value: int((skipped[REASON_COLUMN] == reason.value).sum()) for reason in SkipReason}
    saving = 1 - rows["default_policy"]["total_usd"] / max(rows["every_recorded_call"]["total_usd"], 1e-12)
    text_price = prices.text_price(estimate.text_model)
    assumptions = {
        "day": DAY.isoformat(),
        "timezone": TIMEZONE,
        "seed": args.seed,
        "calls_per_day_setting": args.calls_per_day,
        "calls": total_calls,
        "legs": len(legs),
        "recorded_calls": len(recorded),
        "transcription_model": estimate.transcription_model,
        "audio_usd_per_minute": prices.audio_price(estimate.transcription_model),
        "text_model": estimate.text_model,
        "text_usd_per_1m_in_out": [text_price.input, text_price.output],
        "batch_text": args.batch,
        "billed_audio_per_recorded_second": factor,
        "prompt_tokens": estimate.prompt_tokens,
        "transcript_tokens_per_second": estimate.transcript_tokens_per_talk_second,
        "output_tokens": estimate.output_tokens,
        "policy": policy.model_dump(mode="json"),
        "daily_budget_usd": Budget().daily_usd,
    }
    _print(assumptions, rows, skips, capped_skips, saving)
    _print_trim(trim, rows)
    figures = {
        "assumptions": assumptions,
        "results": rows,
        "trim": trim,
        "trim_saving": round(1 - trim["trimmed_ratio"], 4),
        "policy_skips": skips,
        "policy_saving": round(saving, 4),
    }
    print(json.dumps(figures, sort_keys=True, default=sorted))


def _print(
    assumptions: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    skips: dict[str, int],
    capped_skips: pd.DataFrame,
    saving: float,
) -> None:
    a = assumptions
    print("AudiaPro AI-analysis cost per 1,000 calls (simulated CloudUCM day; estimates, no network)")
    print(
        f"day {a['day']} ({a['timezone']}), seed {a['seed']}: {a['calls']} calls, {a['legs']} legs, "
        f"{a['recorded_calls']} calls with a recording"
    )
    print(
        f"prices: {a['transcription_model']} ${a['audio_usd_per_minute']}/audio min; {a['text_model']} "
        f"${a['text_usd_per_1m_in_out'][0]}/${a['text_usd_per_1m_in_out'][1]} per 1M in/out tokens"
        f"{' at the Batch API rate' if a['batch_text'] else ''}"
    )
    print(
        f"assumed: audio billed x{a['billed_audio_per_recorded_second']:g} per recorded second "
        f"(stereo = one request per channel); {a['prompt_tokens']} prompt tokens + "
        f"{a['transcript_tokens_per_second']} transcript tokens per second; "
        f"{a['output_tokens']} output tokens"
    )
    header = (
        f"{'':34}{'calls':>7}{'audio min':>11}{'transcr. $':>12}{'text $':>9}{'total $':>9}{'$/1k calls':>12}"
    )
    print(header)
    labels = {
        "every_recorded_call": "every recorded call",
        "default_policy": "default policy",
        "default_policy_with_daily_budget": f"default policy, ${a['daily_budget_usd']:g}/day budget",
        "default_policy_trimmed": "default policy, silence trimmed",
    }
    for key, label in labels.items():
        r = rows[key]
        print(
            f"{label:34}{r['calls']:>7}{r['audio_minutes']:>11}{r['transcription_usd']:>12.4f}"
            f"{r['text_usd']:>9.4f}{r['total_usd']:>9.4f}{r['usd_per_1000_calls']:>12.4f}"
        )
    print("policy skips: " + ", ".join(f"{k}={v}" for k, v in skips.items() if v))
    over = int((capped_skips[REASON_COLUMN] == SkipReason.budget_exceeded.value).sum())
    print(
        f"the policy saves {saving:.0%} of the spend on every recording; the daily budget defers {over} calls"
    )


def _print_trim(trim: dict[str, float], rows: dict[str, dict[str, Any]]) -> None:
    before = rows["default_policy"]["usd_per_1000_calls"]
    after = rows["default_policy_trimmed"]["usd_per_1000_calls"]
    print(
        f"silence trimming, measured on {trim['calls']} calls ({trim['legs']} recorded legs, "
        f"{trim['recorded_seconds']:.0f} s): billed audio {trim['billed_seconds_untrimmed']:.0f} s -> "
        f"{trim['billed_seconds_trimmed']:.0f} s (x{trim['trimmed_ratio']:.3f}), speech kept "
        f"{trim['speech_kept']:.2%}; ${before:.2f} -> ${after:.2f} per 1,000 calls"
    )


if __name__ == "__main__":
    main()
