"""Pieces of an analysis run without a database: joining recordings, per-worker PBX clients, labels,
tenant settings, summaries, stored-transcript round trips and the CLI's `--since`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer

from audiapro.analysis.audio import inspect
from audiapro.analysis.config import AnalyzerSettings
from audiapro.analysis.models import SkipReason, SpeakerRole, Transcript, TranscriptSegment, call_label
from audiapro.analysis.offline import BusinessHours, OfflineSettings
from audiapro.analysis.recordings import CallAudioFetcher, join_wavs
from audiapro.analysis.records import item_from_pending, pending_from_item, settings_for
from audiapro.analysis.summary import SUMMARY_COLUMNS, CallOutcome, RunSummary
from audiapro.analysis.tenant import TenantAnalysisConfig
from audiapro.analysis.wav import decode_wav
from audiapro.commands.analysis import parse_since
from audiapro.ucm.errors import UcmRecordingNotFound
from audiapro.ucm.pool import ClientPool
from audiapro.warehouse import RecordingRef
from tests.unit.analysis_support import PBX_RATE, duplicated_mono_call, make_wav, stereo_call, tone

SESSION = "1741079737924521-07700900123"


def test_one_recording_passes_through_and_several_are_joined_in_order() -> None:
    first, second = stereo_call(4.0), stereo_call(6.0)
    assert join_wavs([first]) is first
    joined = decode_wav(join_wavs([first, second]))
    assert joined.channels == 2 and joined.sample_rate == PBX_RATE
    assert joined.seconds == pytest.approx(10.0, abs=0.01)
    assert inspect(join_wavs([first, second])).is_stereo  # speaker roles survive the join
    with pytest.raises(ValueError):
        join_wavs([])


def test_mixed_layouts_are_downmixed_and_rates_follow_the_first_part() -> None:
    mono_16k = make_wav(tone(2.0, 300.0, rate=16_000), rate=16_000)
    joined = decode_wav(join_wavs([duplicated_mono_call(3.0), mono_16k]))
    assert joined.channels == 1 and joined.sample_rate == PBX_RATE
    assert joined.seconds == pytest.approx(5.0, abs=0.01)
    assert np.abs(joined.samples).max() > 0.1


class FakePbx:
    """Serves recordings by path; counts downloads and closes."""

    def __init__(self, files: dict[str, bytes], log: list[str]) -> None:
        self.files, self.log, self.closed = files, log, False

    def download_recording(self, recordfile: str, dest_dir: Path | str, *, action_type: str = "") -> Path:
        if recordfile not in self.files:
            raise UcmRecordingNotFound("recording auto-1741079737... not found")
        self.log.append(recordfile)
        target = Path(dest_dir) / recordfile.rsplit("/", 1)[-1]
        target.write_bytes(self.files[recordfile])
        return target

    def close(self) -> None:
        self.closed = True


def refs(*paths: str) -> list[RecordingRef]:
    return [RecordingRef(SESSION, path, "DIAL") for path in paths]


def test_fetcher_borrows_pooled_pbx_clients_and_closes_them_all() -> None:
    files = {"2025-03/a.wav": stereo_call(2.0), "2025-03/b.wav": stereo_call(3.0)}
    log: list[str] = []
    made: list[FakePbx] = []

    def factory() -> FakePbx:
        made.append(FakePbx(files, log))
        return made[-1]

    results: list[bytes | None] = []
    with CallAudioFetcher(ClientPool(factory, size=1)) as fetcher:
        results.append(fetcher.fetch(refs("2025-03/a.wav", "2025-03/b.wav", "2025-03/a.wav")))
        results.append(fetcher.fetch(refs("2025-03/a.wav")))
        worker = threading.Thread(target=lambda: results.append(fetcher.fetch(refs("2025-03/b.wav"))))
        worker.start()
        worker.join()
        assert fetcher.fetch(refs("2025-03/missing.wav")) is None
        assert fetcher.fetch([]) is None
    assert len(made) == 1 and all(client.closed for client in made)  # one session for both threads
    assert log == ["2025-03/a.wav", "2025-03/b.wav", "2025-03/a.wav", "2025-03/b.wav"]  # repeats once
    assert results[1] == files["2025-03/a.wav"] and results[2] == files["2025-03/b.wav"]
    joined = results[0]
    assert joined is not None and decode_wav(joined).seconds == pytest.approx(5.0, abs=0.01)
    assert CallAudioFetcher(None).fetch(refs("2025-03/a.wav")) is None  # import-only tenant


def test_a_tenant_that_keeps_recordings_gets_each_joined_call_once_and_others_nothing(tmp_path: Path) -> None:
    from audiapro.retention import recording_keeper, recording_path

    files = {"2025-03/a.wav": stereo_call(1.0), "2025-03/b.wav": stereo_call(1.0)}
    keep = recording_keeper("acme", days=2, root=tmp_path)
    with CallAudioFetcher(ClientPool(lambda: FakePbx(files, []), size=1), keep=keep) as fetcher:
        joined = fetcher.fetch(refs("2025-03/a.wav", "2025-03/b.wav"))
        assert fetcher.fetch(refs("2025-03/missing.wav")) is None  # nothing kept for a missing file
    assert joined is not None
    assert recording_path("acme", SESSION, tmp_path).read_bytes() == joined
    assert [p.name for p in (tmp_path / "acme").iterdir()] == [recording_path("acme", SESSION, tmp_path).name]
    assert recording_keeper("acme", days=0, root=tmp_path) is None  # default: nothing stays on disk


def test_call_labels_never_carry_the_number_in_the_session_id() -> None:
    label = call_label(SESSION)
    assert "07700900123" not in label and label.startswith("1741079737924521~")
    assert call_label(SESSION) == label != call_label("1741079737924521-07700900124")


def test_tenant_config_uses_the_tenant_zone_for_business_hours_and_prices_its_budget() -> None:
    config = TenantAnalysisConfig(tenant="acme", timezone="Europe/London")
    assert config.offline.hours_for("acme").timezone == "Europe/London"
    explicit = OfflineSettings(default_hours=BusinessHours(timezone="UTC"))
    assert TenantAnalysisConfig(tenant="a", timezone="Europe/London", offline=explicit).offline == explicit
    budget = config.budget_for(transcription_model="whisper-1", text_model="gpt-5-nano", batch=True)
    assert (budget.estimate.transcription_model, budget.estimate.text_model) == ("whisper-1", "gpt-5-nano")
    assert budget.estimate.batch and budget.daily_usd == config.budget.daily_usd


def test_summary_rows_have_fixed_columns_and_count_outcomes() -> None:
    summary = RunSummary(tenant="acme", mode="openai", budget_usd=5.0)
    for outcome in (
        CallOutcome("succeeded", spent_usd=0.01),
        CallOutcome("failed", spent_usd=0.002),
        CallOutcome("skipped", SkipReason.budget_exceeded),
        CallOutcome("skipped", SkipReason.too_short),
        CallOutcome("queued", spent_usd=0.003),
        CallOutcome("unchanged"),
    ):
        summary.add(outcome)
    row = summary.as_row()
    assert tuple(row) == SUMMARY_COLUMNS
    assert (row["analyzed"], row["failed"], row["skipped"], row["queued_for_batch"]) == (1, 1, 2, 1)
    assert row["skipped_budget_exceeded"] == row["skipped_too_short"] == 1
    assert row["cost_usd"] == pytest.approx(0.015)


def test_a_stored_transcript_round_trips_to_the_same_batch_item() -> None:
    from audiapro.analysis.batch import BatchItem
    from audiapro.analysis.models import CallContext

    settings = AnalyzerSettings()
    transcript = Transcript.from_segments(
        [TranscriptSegment(speaker=SpeakerRole.caller, text="Hello", start_s=0, end_s=2)],
        mode="stereo",
        language="en",
    )
    context = CallContext(tenant="acme", session=SESSION, direction="inbound", talk_s=42)
    item = BatchItem(
        custom_id="ca_x",
        context=context,
        recording_sha256="abc",
        transcript=transcript,
        transcription_model=settings.transcription_model,
        audio_seconds=40.0,
        transcription_cost_usd=0.003,
    )
    pending = pending_from_item(item, settings, None)
    stored = pending.__class__(**{**pending.__dict__, "call": {"direction": "inbound", "talk_s": 42}})
    assert item_from_pending(stored) == item
    assert settings_for(settings, stored) is settings
    older = stored.__class__(**{**stored.__dict__, "prompt_version": "call-insights-v0"})
    assert settings_for(settings, older).prompt_version == "call-insights-v0"


def test_since_accepts_iso_times_and_spans() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert parse_since(None) is None and parse_since(" ") is None
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01T08:00+01:00") == datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        parse_since("yesterday")
