"""`POST /v1/audio/transcriptions`: validation per model, pseudo-transcripts, every output format."""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from audiapro.analysis.openai_simulator import errors
from audiapro.analysis.openai_simulator.audio import AudioInfo, inspect_audio
from audiapro.analysis.openai_simulator.billing import Biller
from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.multipart import FilePart, MultipartForm
from audiapro.analysis.openai_simulator.render import render_srt, render_vtt, verbose_body
from audiapro.analysis.openai_simulator.transcript import (
    PseudoTranscript,
    TranscriptSegment,
    pseudo_transcript,
)
from audiapro.analysis.openai_simulator.util import canonical_json, estimate_tokens, seeded_rng, sha256_hex

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
ALL_FORMATS: tuple[str, ...] = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
# Output formats per model, from the 3.57 create-params docstrings (docs/openai-prices.md).
MODEL_FORMATS: Mapping[str, tuple[str, ...]] = {
    "whisper-1": ("json", "text", "srt", "verbose_json", "vtt"),
    "gpt-transcribe": ("json",),
    "gpt-4o-transcribe": ("json",),
    "gpt-4o-mini-transcribe": ("json",),
    "gpt-4o-mini-transcribe-2025-12-15": ("json",),
    DIARIZE_MODEL: ("json", "text", "diarized_json"),
}
# Models billed by audio tokens report `usage.type == "tokens"`; the others report duration.
TOKEN_BILLED_MODELS = frozenset(
    {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15", DIARIZE_MODEL}
)
LOGPROB_MODELS = frozenset(
    {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15"}
)
HINT_MODELS = frozenset({"gpt-transcribe"})  # `keywords[]` and `languages[]`
STREAMING_IGNORED_MODELS = frozenset({"whisper-1"})
MAX_KNOWN_SPEAKERS = 4
MIN_AUDIO_SECONDS = 0.1
DEFAULT_LANGUAGE = "en"
SECONDS_DECIMALS = 3
LOGPROB_RANGE = (-0.6, -0.001)


def _require_file(form: MultipartForm, config: OpenAISimConfig) -> tuple[FilePart, str]:
    upload = form.files.get("file")
    if upload is None:
        raise errors.missing_param("file")
    extension = posixpath.splitext(upload.filename.lower())[1].lstrip(".")
    if extension not in config.audio_extensions:
        supported = sorted(config.audio_extensions)
        raise errors.SimError(
            400, f"Invalid file format. Supported formats: {supported}", param="file", code="invalid_value"
        )
    if len(upload.data) > config.max_audio_bytes:
        # Wording of the real API's upload limit; it is not tied to a parameter.
        raise errors.SimError(
            413,
            f"Maximum content size limit ({config.max_audio_bytes}) exceeded ({len(upload.data)} bytes read)",
        )
    return upload, extension


def _check_options(form: MultipartForm, model: str, response_format: str) -> None:
    """Reject parameter combinations the real API rejects for `model`."""
    if response_format not in ALL_FORMATS:
        raise errors.unsupported_value("response_format", response_format, ALL_FORMATS)
    supported = MODEL_FORMATS.get(model, ALL_FORMATS)
    if response_format not in supported:
        raise errors.SimError(
            400,
            f"response_format '{response_format}' is not compatible with model '{model}'. "
            f"Use {' or '.join(repr(f) for f in supported)}.",
            param="response_format",
            code="unsupported_value",
        )
    if form.get("stream") == "true" and model not in STREAMING_IGNORED_MODELS:
        raise errors.unsupported_by_simulator("stream", "Streaming transcription")
    if model == DIARIZE_MODEL and form.get("prompt"):
        raise errors.SimError(
            400,
            f"prompt is not supported with model '{model}'.",
            param="prompt",
            code="unsupported_parameter",
        )
    include = form.get_list("include")
    if include and (model not in LOGPROB_MODELS or response_format != "json" or include != ["logprobs"]):
        raise errors.SimError(
            400,
            f"include {include} is not supported with model '{model}' and "
            f"response_format '{response_format}'.",
            param="include",
            code="unsupported_parameter",
        )
    if form.get_list("timestamp_granularities") and response_format != "verbose_json":
        raise errors.SimError(
            400,
            "timestamp_granularities requires response_format 'verbose_json'.",
            param="timestamp_granularities",
            code="unsupported_parameter",
        )
    for hint in ("keywords", "languages"):
        if form.get_list(hint) and model not in HINT_MODELS:
            raise errors.SimError(
                400,
                f"{hint} is not supported with model '{model}'.",
                param=hint,
                code="unsupported_parameter",
            )
    if form.get_list("languages") and form.get("language"):
        raise errors.SimError(
            400, "language and languages cannot be used together.", param="languages", code="invalid_value"
        )
    names, refs = form.get_list("known_speaker_names"), form.get_list("known_speaker_references")
    if (names or refs) and model != DIARIZE_MODEL:
        raise errors.SimError(
            400,
            f"known_speaker_names is not supported with model '{model}'.",
            param="known_speaker_names",
            code="unsupported_parameter",
        )
    if len(names) > MAX_KNOWN_SPEAKERS or len(names) != len(refs):
        raise errors.invalid_value(
            "known_speaker_names",
            f"known_speaker_names and known_speaker_references must have the same length (at most "
            f"{MAX_KNOWN_SPEAKERS}).",
        )
    temperature = form.get("temperature")
    if temperature is not None:
        try:
            value = float(temperature)
        except ValueError:
            raise errors.invalid_type("temperature", "a number") from None
        if not 0.0 <= value <= 1.0:
            raise errors.invalid_value("temperature", "temperature must be between 0 and 1.")


def _chunking_strategy(form: MultipartForm) -> str | dict[str, str] | None:
    nested = form.nested("chunking_strategy")
    if nested:
        if nested.get("type") != "server_vad":
            raise errors.unsupported_value("chunking_strategy.type", nested.get("type"), ["server_vad"])
        return nested
    value = form.get("chunking_strategy")
    if value is not None and value != "auto":
        raise errors.unsupported_value("chunking_strategy", value, ["auto"])
    return value


def _cap_segments(transcript: PseudoTranscript, max_chars: int) -> PseudoTranscript:
    """Cut the transcript where the model's output-token cap would stop it."""
    kept: list[TranscriptSegment] = []
    used = 0
    for segment in transcript.segments:
        room = max_chars - used - (1 if kept else 0)
        if room <= 0:
            break
        if len(segment.text) > room:
            kept.append(replace(segment, text=segment.text[:room].rsplit(" ", 1)[0] or segment.text[:room]))
            break
        kept.append(segment)
        used += len(segment.text) + (1 if len(kept) > 1 else 0)
    return replace(transcript, segments=tuple(kept))


class TranscriptionEngine:
    """Validates transcription requests and renders their answers.

    Args:
        config: Simulator configuration.
        biller: Billing sink.
    """

    def __init__(self, config: OpenAISimConfig, biller: Biller) -> None:
        self._config = config
        self._biller = biller

    def _inspect(self, upload: FilePart, extension: str, model: str, form: MultipartForm) -> AudioInfo:
        cfg = self._config
        info = inspect_audio(
            upload.data,
            extension,
            window_s=cfg.window_s,
            silence_dbfs=cfg.silence_dbfs,
            assumed_kbps=cfg.assumed_compressed_kbps,
        )
        if info.duration_s < MIN_AUDIO_SECONDS:
            raise errors.SimError(
                400,
                f"Audio file is too short. Minimum audio length is {MIN_AUDIO_SECONDS} seconds.",
                param="file",
                code="audio_too_short",
            )
        limit = cfg.max_audio_seconds.get(model)
        if limit is not None and info.duration_s > limit:
            raise errors.SimError(
                400,
                f"audio duration {info.duration_s:.1f} seconds is longer than {limit:.0f} seconds which is "
                "the maximum for this model",
                param="file",
                code="invalid_value",
            )
        if (
            model == DIARIZE_MODEL
            and info.duration_s > cfg.diarize_chunking_threshold_s
            and _chunking_strategy(form) is None
        ):
            raise errors.SimError(
                400,
                f"chunking_strategy is required for model '{model}' when the audio is longer than "
                f"{cfg.diarize_chunking_threshold_s:.0f} seconds.",
                param="chunking_strategy",
                code="missing_required_parameter",
            )
        return info

    def transcribe(self, form: MultipartForm) -> dict[str, Any] | str:
        """Answer one request: a JSON body, or plain text for text/srt/vtt.

        Raises:
            SimError: For any request the real API would reject.
        """
        cfg = self._config
        model = form.get("model")
        if not model:
            raise errors.missing_param("model")
        if model not in cfg.transcription_models:
            raise errors.SimError(
                400,
                f"Invalid model '{model}' for audio transcriptions. Supported models: "
                f"{', '.join(cfg.transcription_models)}.",
                param="model",
                code="model_not_found",
            )
        upload, extension = _require_file(form, cfg)
        response_format = form.get("response_format") or "json"
        _check_options(form, model, response_format)
        _chunking_strategy(form)
        info = self._inspect(upload, extension, model, form)
        transcript = pseudo_transcript(
            info,
            seed=cfg.seed,
            words_per_second=cfg.words_per_second,
            speakers=form.get_list("known_speaker_names"),
        )
        cap = cfg.transcript_token_caps.get(model)
        if cap is not None:
            transcript = _cap_segments(transcript, cap * cfg.chars_per_token)
        return self._answer(form, model, response_format, info, transcript)

    def _usage(self, model: str, info: AudioInfo, text: str, prompt: str) -> dict[str, Any]:
        seconds = round(info.duration_s, SECONDS_DECIMALS)
        if model not in TOKEN_BILLED_MODELS:
            return {"type": "duration", "seconds": seconds}
        audio_tokens = math.ceil(info.duration_s * self._config.audio_tokens_per_second)
        text_tokens = estimate_tokens(prompt, self._config.chars_per_token)
        output_tokens = estimate_tokens(text, self._config.chars_per_token)
        return {
            "type": "tokens",
            "input_tokens": audio_tokens + text_tokens,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": text_tokens},
            "output_tokens": output_tokens,
            "total_tokens": audio_tokens + text_tokens + output_tokens,
        }

    def _answer(
        self,
        form: MultipartForm,
        model: str,
        response_format: str,
        info: AudioInfo,
        transcript: PseudoTranscript,
    ) -> dict[str, Any] | str:
        text = transcript.text
        usage = self._usage(model, info, text, form.get("prompt") or "")
        fields = {k: v for k, v in sorted(form.fields.items())}
        self._biller.audio(
            fingerprint=sha256_hex(TRANSCRIPTIONS_PATH, canonical_json(fields), info.digest),
            model=model,
            seconds=info.duration_s,
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
        )
        language = form.get("language") or next(iter(form.get_list("languages")), DEFAULT_LANGUAGE)
        if response_format == "text":
            return text + "\n"
        if response_format == "srt":
            return render_srt(transcript.segments)
        if response_format == "vtt":
            return render_vtt(transcript.segments)
        if response_format == "verbose_json":
            granularities = form.get_list("timestamp_granularities")
            return verbose_body(
                info, transcript, language, granularities, usage, self._config.chars_per_token
            )
        if response_format == "diarized_json":
            return {
                "task": "transcribe",
                "duration": round(info.duration_s, SECONDS_DECIMALS),
                "text": text,
                "segments": [
                    {
                        "type": "transcript.text.segment",
                        "id": f"seg_{index:03d}",
                        "start": round(s.start, SECONDS_DECIMALS),
                        "end": round(s.end, SECONDS_DECIMALS),
                        "speaker": s.speaker,
                        "text": s.text,
                    }
                    for index, s in enumerate(transcript.segments)
                ],
                "usage": usage,
            }
        body: dict[str, Any] = {"text": text, "usage": usage}
        if model in HINT_MODELS:
            # gpt-transcribe reports detected languages; none when nothing was said.
            body["languages"] = [{"code": language}] if text else []
        if form.get_list("include") == ["logprobs"]:
            rng = seeded_rng("logprobs", self._config.seed, info.digest)
            body["logprobs"] = [
                {
                    "token": word,
                    "bytes": list(word.encode()),
                    "logprob": round(rng.uniform(*LOGPROB_RANGE), 4),
                }
                for word in text.split()
            ]
        return body
