"""Silence trimming before transcription: voice-activity detection, span maps, no speech lost."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from audiapro.analysis.audio import AudioLimits, AudioPart, prepare, read_wav
from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.models import CallContext, SpeakerRole
from audiapro.analysis.speech import KeptSpan, SpanMap, VadSettings, covers, detect_speech, trim
from audiapro.ucm.simulator.wav import speech_intervals, synth_wav
from tests.unit.analysis_support import PBX_RATE, gated, make_wav, served, tone

NOISE = 0.004  # line noise of the UCM simulator's recordings (about -48 dBFS)
SETTINGS = VadSettings()
#: Latest a detected span may start before / end after the speech it holds.
SLACK = SETTINGS.pad_seconds + SETTINGS.hangover_seconds + 0.05
CALL = CallContext(tenant="acme", session="1700000000.7", direction="inbound", talk_s=60)


def noisy(seconds: float, bursts: list[tuple[float, float]], *, seed: int = 3) -> np.ndarray:
    """Tone bursts ("speech") at the given spans over line noise."""
    rng = np.random.default_rng(seed)
    signal = gated(tone(seconds, 220.0), PBX_RATE, bursts)
    return (signal + rng.normal(0, NOISE, signal.size)).astype(np.float32)


def test_speech_bursts_in_noise_are_found_and_padded() -> None:
    bursts = [(1.0, 3.0), (6.0, 8.5)]
    spans = detect_speech(noisy(12.0, bursts), PBX_RATE)
    assert len(spans) == 2
    for (start, end), (a, b) in zip(bursts, spans, strict=True):
        assert start - SLACK <= a <= start and end <= b <= end + SLACK


def test_short_gaps_are_merged_and_long_ones_cut() -> None:
    spans = detect_speech(noisy(12.0, [(1.0, 3.0), (3.3, 5.0), (8.0, 9.0)]), PBX_RATE)
    assert len(spans) == 2
    assert covers(spans, (1.0, 5.0)) and covers(spans, (8.0, 9.0))
    assert not covers(spans, (5.0 + SLACK + 0.01, 8.0))
    # Without merging (or padding) the 0.3 s pause splits the turn (the hangover bridges only 0.1 s).
    unmerged = VadSettings(merge_gap_seconds=0, pad_seconds=0)
    split = detect_speech(noisy(12.0, [(1.0, 3.0), (3.3, 5.0)]), PBX_RATE, unmerged)
    assert len(split) == 2


def test_noise_hiss_and_clicks_are_not_speech() -> None:
    rng = np.random.default_rng(5)
    quiet = rng.normal(0, NOISE, PBX_RATE * 10)
    assert detect_speech(quiet.astype(np.float32), PBX_RATE) == []
    hiss = quiet.copy()
    hiss[PBX_RATE * 2 : PBX_RATE * 4] += rng.normal(0, 0.03, PBX_RATE * 2)  # hiss, 17 dB over the floor
    hiss[PBX_RATE * 6 : PBX_RATE * 6 + 80] += 0.5  # a 10 ms click
    assert detect_speech(hiss.astype(np.float32), PBX_RATE) == []
    assert detect_speech(np.zeros(PBX_RATE * 3, dtype=np.float32), PBX_RATE) == []


def test_trim_concatenates_spans_and_the_span_map_points_back_to_the_original() -> None:
    signal = (np.arange(PBX_RATE * 10) / (PBX_RATE * 10)).astype(np.float32)  # a ramp: value = time
    spans = [(1.0, 2.5), (4.0, 4.5), (7.25, 9.0)]
    trimmed, span_map = trim(signal, PBX_RATE, spans, join_gap_seconds=0.05)
    assert span_map.kept_seconds == pytest.approx(3.75)
    assert span_map.audio_seconds == pytest.approx(3.75 + 2 * 0.05) == trimmed.size / PBX_RATE
    assert [(s.start_s, s.end_s) for s in span_map.spans] == spans
    for span in span_map.spans:
        for t in np.linspace(span.offset_s, span.offset_s + span.seconds - 1 / PBX_RATE, 7):
            original = span_map.to_call_time(float(t))
            assert trimmed[round(t * PBX_RATE)] == signal[round(original * PBX_RATE)]
    # Join gaps map to the end of the span before them; outside times are clamped.
    assert span_map.to_call_time(1.52) == pytest.approx(2.5)
    assert span_map.to_call_time(-1.0) == 1.0 and span_map.to_call_time(99.0) == 9.0


def test_a_span_map_window_is_rebased_to_its_own_start() -> None:
    span_map = SpanMap((KeptSpan(1.0, 3.0, 0.0), KeptSpan(5.0, 6.0, 2.1)), 3.1)
    window = span_map.window(1.5, 3.1)
    bounds = [(s.start_s, s.end_s, s.offset_s) for s in window.spans]
    assert bounds == [(2.5, 3.0, 0.0), (5.0, 6.0, pytest.approx(0.6))]
    assert window.to_call_time(0.0) == 2.5 and window.to_call_time(1.6) == pytest.approx(6.0)
    assert SpanMap.identity(4.0).to_call_time(2.0) == 2.0


def test_a_silent_channel_is_skipped_and_the_other_trimmed() -> None:
    rng = np.random.default_rng(9)
    left = noisy(20.0, [(2.0, 6.0), (12.0, 15.0)])
    right = rng.normal(0, NOISE, left.size)  # line noise only: the agent never speaks
    parts = prepare(make_wav(left, right))
    assert {p.role for p in parts} == {SpeakerRole.caller}
    (part,) = parts
    assert part.span_map is not None and len(part.span_map.spans) == 2
    assert part.seconds < 8.0 < 20.0  # 7 s of speech plus padding, not the whole channel
    assert part.start_s == pytest.approx(2.0 - SETTINGS.pad_seconds, abs=0.03)
    assert part.end_s == pytest.approx(15.0 + SETTINGS.hangover_seconds + SETTINGS.pad_seconds, abs=0.03)
    # A recording of line noise alone has nothing worth sending.
    assert prepare(make_wav(right, rng.normal(0, NOISE, left.size))) == []


def _kept(parts: list[AudioPart], role: SpeakerRole) -> list[tuple[float, float]]:
    """Call-time spans kept for one role, rebuilt from the parts' span maps."""
    spans = [
        (part.to_call_time(s.offset_s), part.to_call_time(s.offset_s + s.seconds))
        for part in parts
        if part.role is role and part.span_map is not None
        for s in part.span_map.spans
    ]
    return sorted(spans)


@pytest.mark.parametrize("stereo", [True, False])
def test_no_speech_interval_of_simulated_recordings_is_lost(stereo: bool) -> None:
    kept_audio = total_audio = 0.0
    limits = AudioLimits(max_part_seconds=120.0)  # long calls are chunked: spans cross part bounds
    for number in range(16):
        name = f"20260303-1{number:05d}-1001-{'s' if stereo else 'm'}.wav"
        seconds = 15.0 + 17.0 * number
        parts = prepare(synth_wav(name, seconds, stereo=stereo), limits)
        truth = speech_intervals(name, seconds)
        if stereo:
            checks = [(SpeakerRole.caller, truth.caller), (SpeakerRole.agent, truth.agent)]
        else:
            checks = [(SpeakerRole.unknown, truth.caller + truth.agent)]
        for role, intervals in checks:
            kept = _kept(parts, role)
            # Parts of one role hold disjoint, ordered stretches of the call.
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(kept))
            lost = [i for i in intervals if not covers(kept, i, tolerance=1e-6)]
            # A turn split across two parts is covered by both sides of the cut.
            lost = [i for i in lost if not _covered_by_union(kept, i)]
            assert lost == [], f"{name} {role.value}: speech lost at {lost}"
        kept_audio += sum(p.seconds for p in parts)
        total_audio += seconds * (2 if stereo else 1)
    # Stereo: each party speaks under half the time; mono: the short pauses between turns are kept.
    assert kept_audio / total_audio < (0.6 if stereo else 1.0)


def _covered_by_union(spans: list[tuple[float, float]], interval: tuple[float, float]) -> bool:
    """Whether touching spans (a cut between parts) together contain `interval`."""
    start, end = interval
    position = start
    for a, b in spans:
        if a <= position + 1e-6 and b > position:
            position = b
    return position >= end - 1e-6


def test_trimming_cuts_the_billed_audio_of_a_simulated_stereo_call() -> None:
    name, seconds = "20260303-140000-1001-trim.wav", 90.0
    wav = synth_wav(name, seconds, stereo=True)
    whole = AnalyzerSettings(request_timeout_s=10.0, audio_limits=AudioLimits(vad=VadSettings(enabled=False)))
    with served(settings=whole) as (sim, analyzer):
        untrimmed = analyzer.analyze_call(wav, CALL)
        untrimmed_billed = sim.stats.audio_seconds
    with served() as (sim, analyzer):
        trimmed = analyzer.analyze_call(wav, CALL)
        trimmed_billed = sim.stats.audio_seconds
    assert untrimmed.status == trimmed.status == "succeeded"
    assert untrimmed_billed == pytest.approx(2 * seconds) == untrimmed.audio_seconds
    assert trimmed.audio_seconds == pytest.approx(trimmed_billed)
    assert trimmed_billed < 0.6 * untrimmed_billed
    assert trimmed.cost_usd < untrimmed.cost_usd
    # Segments carry call time: each speaker's segment starts at their first turn, not at 0.
    truth = speech_intervals(name, seconds)
    assert trimmed.transcript is not None
    starts = {s.speaker: s.start_s for s in trimmed.transcript.segments}
    assert starts[SpeakerRole.agent] == pytest.approx(truth.agent[0][0], abs=SLACK)
    assert starts[SpeakerRole.caller] == pytest.approx(truth.caller[0][0] - SETTINGS.pad_seconds, abs=0.05)
    assert trimmed.transcript.text.startswith("Agent: ")  # the agent answers first


def test_decoded_parts_hold_the_original_audio_at_the_mapped_times() -> None:
    left = noisy(10.0, [(1.0, 2.0), (5.0, 7.0)])
    right = noisy(10.0, [(2.5, 4.0)], seed=4)
    (caller, agent) = sorted(
        prepare(make_wav(left, right), AudioLimits(target_rate=None)), key=lambda p: p.role.value
    )[::-1]
    assert (caller.role, agent.role) == (SpeakerRole.caller, SpeakerRole.agent)
    for part, source in ((caller, left), (agent, right)):
        audio = read_wav(part.wav).samples[:, 0]
        assert part.span_map is not None
        for span in part.span_map.spans:
            first = round(span.offset_s * PBX_RATE)
            origin = round(part.to_call_time(span.offset_s) * PBX_RATE)
            expected = source[origin : origin + 400]
            assert np.abs(audio[first : first + 400] - expected).max() < 1e-3
