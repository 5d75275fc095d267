"""Instructions and request bodies for the structured-analysis step (sync and Batch API alike).

The static instructions come first and never change within a `PROMPT_VERSION`, so the provider's
prompt cache can serve them; everything call-specific (metadata, keywords, transcript) goes into the
input. Change the instructions only together with `PROMPT_VERSION`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

# The SDK's own converter from a pydantic model to a strict `text.format`, used so Batch API lines
# carry exactly the schema `responses.parse(text_format=...)` sends (private module; openai is pinned).
from openai.lib._parsing._responses import type_to_text_format_param

from audiapro.analysis.models import CallContext, CallInsights, Transcript

INSTRUCTIONS: Final = """\
You analyse recorded phone calls between a business (the agent side) and an external party (the caller).
Return the CallInsights JSON object. Rules:
- summary: two or three plain sentences: why the caller called and how the call ended.
- language: ISO 639-1 code of the conversation.
- intent: the caller's main reason for calling, in a few words.
- outcome: exactly one label, the first that applies: resolved, follow_up_needed, sale, booking,
  complaint, voicemail, wrong_number, spam, missed, other (definitions are in the schema).
- sentiment: overall; caller_sentiment and agent_sentiment per side. Score -1 (very negative) to 1
  (very positive). When the transcript is not split by speaker and a side cannot be told apart, set
  that side to null.
- topics: up to five short lower-case tags.
- action_items: concrete next steps with their owner; empty when there are none.
- quality_score: 0-100 for how well the agent handled the call (greeting, understanding, accuracy,
  resolution, courtesy); quality_reasons: the main reasons, short.
- keyword_hits: only keywords from the given keyword list that were said, also in other words; use
  the keyword exactly as listed, the speaker who said it and how often. Empty when none.
Base everything on the transcript only; do not invent facts. Transcripts come from speech
recognition and may contain errors.
"""

#: Marker appended when a transcript is cut to `max_chars`.
TRUNCATED_MARK: Final = "\n[transcript truncated]"


def render_input(
    transcript: Transcript, context: CallContext, keywords: Sequence[str], max_chars: int
) -> str:
    """The call-specific input: metadata, keyword list and transcript.

    Args:
        transcript: The transcript.
        context: Call facts (no phone numbers are sent).
        keywords: Tenant keywords to report.
        max_chars: Transcripts longer than this are cut (caps the cost of pathological calls).

    Returns:
        The input text.
    """
    text = transcript.text
    if len(text) > max_chars:
        text = text[:max_chars] + TRUNCATED_MARK
    roles = (
        "separate channels, speaker labels are certain"
        if transcript.mode == "stereo"
        else "single channel, speakers are not labelled"
    )
    started = context.started_at.isoformat() if context.started_at else "unknown"
    lines = [
        "Call metadata:",
        f"- direction: {context.direction or 'unknown'}",
        f"- started (UTC): {started}",
        f"- talk time: {context.talk_s} s",
        f"- recording: {roles}",
        f"Keyword list: {'; '.join(keywords) if keywords else '(none)'}",
        "Transcript:",
        text,
    ]
    return "\n".join(lines)


def response_body(
    *,
    model: str,
    input_text: str,
    max_output_tokens: int,
    reasoning_effort: str | None,
    store: bool,
) -> dict[str, Any]:
    """The `/v1/responses` body for one analysis, as sent in a Batch API line.

    Args:
        model: Text model.
        input_text: Output of `render_input`.
        max_output_tokens: Output-token limit.
        reasoning_effort: Reasoning effort, or None to leave it out (non-reasoning models).
        store: Let the provider store the response.

    Returns:
        The JSON body.
    """
    body: dict[str, Any] = {
        "model": model,
        "instructions": INSTRUCTIONS,
        "input": input_text,
        "text": {"format": type_to_text_format_param(CallInsights)},
        "max_output_tokens": max_output_tokens,
        "store": store,
    }
    if reasoning_effort is not None:
        body["reasoning"] = {"effort": reasoning_effort}
    return body
