"""Transcript redaction: what is replaced, what is kept, segments, policies and encrypted originals."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from audiapro.analysis.models import SpeakerRole, Transcript, TranscriptSegment
from audiapro.analysis.openai_simulator.transcriptions import PII_SCRIPTS
from audiapro.analysis.redact import (
    PrivacyPolicy,
    Redactor,
    TranscriptPrivacy,
    luhn_valid,
    new_key,
    number_runs,
)
from blocks.openai import AnalysisSettings
from tests.unit.analysis_support import ORDER_NUMBER, card_numbers

US = Redactor("US")
GB = Redactor("GB")


def redacted(text: str, redactor: Redactor = US) -> str:
    return redactor.redact_text(text)[0]


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("5555555555554444") and luhn_valid("378282246310005")
    assert not luhn_valid("1234567890123456") and not luhn_valid("4111111111111112") and not luhn_valid("")


@pytest.mark.parametrize(
    "text",
    [
        "my card is 4111 1111 1111 1111 thanks",
        "my card is 4111-1111-1111-1111 thanks",
        "my card is 4111111111111111 thanks",
        "my card is four one one one, one one one one, one one one one, one one one one thanks",
        "my card is Four One One One one one one one one one one one one one one one thanks",
        # "oh" for zero, "double"/"triple" for repeats (American Express test number 378282246310005).
        "my card is three seven eight two eight two two four six three one oh oh oh five thanks",
        "my card is three seven eight two eight double two four six three one triple oh five thanks",
        "my card is double five double five five five five five five five five five double four 44 thanks",
    ],
)
def test_card_numbers_written_or_spoken_become_a_placeholder(text: str) -> None:
    text_out, counts = US.redact_text(text)
    assert text_out == "my card is [CARD] thanks"
    assert counts == {"card": 1}


@pytest.mark.parametrize(
    "text",
    [
        "order number 1234 5678 9012 3456 please",
        "order number one two three four five six seven eight nine oh one two three four five six please",
        "reference 4111 1111 1111 1112 please",  # one digit off a card: fails the Luhn check
        "ticket 98765 and extension 1001 at ten thirty on 2026-03-02, one moment please",
    ],
)
def test_luhn_invalid_runs_and_ordinary_numbers_are_kept(text: str) -> None:
    assert US.redact_text(text) == (text, {})


def test_phone_numbers_by_region() -> None:
    assert (
        redacted("call me on 415 555 2671 or (415) 555-2671 today") == "call me on [PHONE] or [PHONE] today"
    )
    assert redacted("my number is four one five, five five five, two six seven one") == "my number is [PHONE]"
    assert redacted("the office is +44 20 7946 0018") == "the office is [PHONE]"
    # A UK national number is a phone number for a UK tenant, not for a US one.
    assert redacted("ring 020 7946 0018 please", GB) == "ring [PHONE] please"
    assert redacted("ring 020 7946 0018 please", US) == "ring 020 7946 0018 please"


def test_a_spoken_number_ends_with_its_sentence() -> None:
    # "One moment" starts the next sentence: joined, the phone number became 11 digits and stayed.
    text, counts = US.redact_text(
        "my phone is four one five, five five five, two six seven one. One moment please."
    )
    assert text == "my phone is [PHONE]. One moment please." and counts["phone"] == 1
    # Dots inside a written number still join it.
    assert US.redact_text("call 415.555.2671 now")[0] == "call [PHONE] now"


def test_email_addresses() -> None:
    text, counts = US.redact_text("write to jane.doe+calls@example.co.uk or J_SMITH@Example.org.")
    assert text == "write to [EMAIL] or [EMAIL]."
    assert counts == {"email": 2}


def test_national_ids_follow_the_region() -> None:
    assert redacted("my SSN is 536-22-1987") == "my SSN is [SSN]"
    assert redacted("social security number five three six two two one nine eight seven") == (
        "social security number [SSN]"
    )
    # Nine digits without the words are not an SSN; invalid SSN areas are not matched.
    assert redacted("item 536221987 and 000-12-3456") == "item 536221987 and 000-12-3456"
    assert redacted("my NI number is AB 12 34 56 C", GB) == "my NI number is [NATIONAL_ID]"
    assert redacted("my NI number is AB123456C", US) == "my NI number is AB123456C"
    assert redacted("my SSN is 536-22-1987", GB) == "my SSN is 536-22-1987"


def test_a_card_number_split_across_segments_is_found_and_timestamps_stay() -> None:
    segments = [
        TranscriptSegment(
            speaker=SpeakerRole.caller, text="It is four one one one one one one one", start_s=0, end_s=5
        ),
        TranscriptSegment(speaker=SpeakerRole.agent, text="Go on, I'm listening.", start_s=5, end_s=7),
        TranscriptSegment(
            speaker=SpeakerRole.caller, text="one one one one one one one one, ok?", start_s=7, end_s=12
        ),
    ]
    transcript = Transcript.from_segments(segments, mode="stereo", language="en")
    # Each half alone is no card: only the speaker's segments read together are.
    assert US.redact_text(segments[0].text)[1] == {}
    out, counts = US.redact_transcript(transcript)
    assert counts == {"card": 1}
    assert [s.text for s in out.segments] == ["It is [CARD]", "Go on, I'm listening.", "[CARD], ok?"]
    assert [(s.start_s, s.end_s, s.speaker) for s in out.segments] == [
        (s.start_s, s.end_s, s.speaker) for s in transcript.segments
    ]
    assert out.text == "Caller: It is [CARD]\nAgent: Go on, I'm listening.\nCaller: [CARD], ok?"


def test_another_speakers_digits_do_not_join_a_run() -> None:
    segments = [
        TranscriptSegment(
            speaker=SpeakerRole.caller, text="four one one one one one one one", start_s=0, end_s=5
        ),
        TranscriptSegment(
            speaker=SpeakerRole.agent, text="one one one one one one one one", start_s=5, end_s=7
        ),
    ]
    transcript = Transcript.from_segments(segments, mode="stereo", language="en")
    assert US.redact_transcript(transcript) == (transcript, {})


@pytest.mark.parametrize("script", PII_SCRIPTS)
def test_the_simulators_scripts_keep_no_card_phone_or_email(script: str) -> None:
    text, counts = US.redact_text(script)
    assert counts["card"] == 1 and counts["phone"] + counts["email"] >= 1
    assert "@" not in text
    assert not card_numbers(text)
    assert not [r for r in number_runs(text) if len(r.digits) >= 7 and US._is_phone(r.digits)]
    assert not re.search(r"\d{3}-\d{2}-\d{4}", text)
    if "order number" in script:
        assert ORDER_NUMBER in text


def _mono(text: str) -> Transcript:
    return Transcript.from_segments(
        [TranscriptSegment(speaker=SpeakerRole.unknown, text=text, start_s=0, end_s=10)],
        mode="mono",
        language="en",
    )


def test_policy_off_keeps_the_original_and_counts_nothing() -> None:
    original = _mono("card 4111 1111 1111 1111, mail a@b.com")
    result = TranscriptPrivacy(policy=PrivacyPolicy.off).apply(original)
    assert result.transcript == original and result.counts is None and result.encrypted_original is None


def test_policy_redact_counts_every_category() -> None:
    result = TranscriptPrivacy().apply(_mono("card 4111 1111 1111 1111, mail a@b.com"))
    assert result.transcript.text == "card [CARD], mail [EMAIL]"
    assert result.counts == {"card": 1, "phone": 0, "email": 1, "ssn": 0, "national_id": 0}
    assert result.encrypted_original is None


def test_kept_original_decrypts_with_the_blocks_key_only() -> None:
    key = new_key()
    block = AnalysisSettings(
        privacy_policy=PrivacyPolicy.redact_keep_encrypted, transcript_key=SecretStr(key)
    )
    privacy = block.tenant_config("acme", "Europe/London", "GB").privacy
    assert privacy.region == "GB"
    original = _mono("card 4111 1111 1111 1111, phone 020 7946 0018")
    result = privacy.apply(original)
    assert result.transcript.text == "card [CARD], phone [PHONE]"
    assert result.encrypted_original is not None and "4111" not in result.encrypted_original
    decrypted = Fernet(key.encode()).decrypt(result.encrypted_original.encode())
    assert Transcript.model_validate_json(decrypted) == original
    assert privacy.decrypt(result.encrypted_original) == original
    other = TranscriptPrivacy(policy=PrivacyPolicy.redact_keep_encrypted, key=SecretStr(new_key()))
    with pytest.raises(ValueError, match="does not match"):
        other.decrypt(result.encrypted_original)


def test_keeping_originals_needs_a_valid_key() -> None:
    with pytest.raises(ValidationError, match="needs an encryption key"):
        TranscriptPrivacy(policy=PrivacyPolicy.redact_keep_encrypted)
    with pytest.raises(ValidationError, match="not a Fernet key"):
        TranscriptPrivacy(policy=PrivacyPolicy.redact_keep_encrypted, key=SecretStr("hunter2"))
    assert "hunter2" not in repr(TranscriptPrivacy(key=SecretStr("hunter2")))


def test_block_defaults_redact_in_the_pbx_region() -> None:
    privacy = AnalysisSettings().tenant_config("acme", "UTC", "GB").privacy
    assert privacy.policy is PrivacyPolicy.redact and privacy.region == "GB" and privacy.key is None
    assert AnalysisSettings(phone_region="us").tenant_config("acme", "UTC", "GB").privacy.region == "US"
