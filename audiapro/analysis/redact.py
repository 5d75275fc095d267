"""Local redaction of personal data in transcripts, before they are stored or sent to the text model.

Runs in-process on plain text: no network, no model download. What it replaces, with typed
placeholders that keep the text readable for the model:

* ``[CARD]``: payment card numbers (13-19 digits passing the Luhn check), written as digits or
  spoken as words ("four one one one ...", "oh", "double four", "triple one"), also when the number
  runs on from one transcript segment of a speaker into the next one. Digit runs that fail the
  Luhn check (order and reference numbers) are kept.
* ``[EMAIL]``: e-mail addresses.
* ``[SSN]`` (US) / ``[NATIONAL_ID]`` (UK National Insurance number): national identifiers of the
  tenant's region. An SSN is matched in its written ``AAA-GG-SSSS`` form, or as nine digits (written
  or spoken) right after "social security" / "SSN".
* ``[PHONE]``: phone numbers, found by ``phonenumbers``' matcher with the tenant's region, and digit
  runs (written or spoken) that form a valid number of that region.

Not redacted: names, street addresses, dates of birth, account or order numbers that are not card
numbers, anything the transcription model already wrote in another form (a number cut in two by
silence in the middle, "four thousand one hundred" spelled as an amount).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from audiapro.analysis.models import Transcript, TranscriptSegment


class Category(StrEnum):
    """What a placeholder stands for (also the keys of the stored counts)."""

    card = "card"
    phone = "phone"
    email = "email"
    ssn = "ssn"
    national_id = "national_id"


PLACEHOLDERS: Final[dict[Category, str]] = {c: f"[{c.value.upper()}]" for c in Category}


class PrivacyPolicy(StrEnum):
    """What happens to a tenant's transcripts.

    off: Stored and sent to the text model as transcribed.
    redact: Personal data replaced by placeholders before storage and before the text model (default).
    redact_keep_encrypted: As `redact`, and the original transcript is also stored, encrypted with the
        tenant's key (Fernet), for disputes.
    """

    off = "off"
    redact = "redact"
    redact_keep_encrypted = "redact_keep_encrypted"


#: Regions whose national identifier is recognised, and the placeholder category it gets.
NATIONAL_ID_REGIONS: Final[dict[str, Category]] = {"US": Category.ssn, "GB": Category.national_id}
CARD_MIN_DIGITS: Final = 13
CARD_MAX_DIGITS: Final = 19
PHONE_MIN_DIGITS: Final = 7
PHONE_MAX_DIGITS: Final = 15
SSN_DIGITS: Final = 9
#: How far before a nine-digit run "social security" / "SSN" may be said (characters).
SSN_CONTEXT_CHARS: Final = 40
#: Separator of segments of one speaker joined for matching (runs may cross it).
_SEGMENT_JOIN: Final = "\n"

_DIGIT_WORDS: Final = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEATS: Final = {"double": 2, "triple": 3}
#: A token of a spoken or written number: digits, a digit word, or double/triple.
_TOKEN: Final = re.compile(r"\d+|[A-Za-z]+")
#: What may stand between two tokens of one number: spaces, dashes, dots, commas (and segment breaks).
_GAP: Final = re.compile(r"[\s.,\-]*")
#: A full stop and a space inside a gap: with a capital after it, the next sentence begins.
_SENTENCE_END: Final = re.compile(r"\.[ \t]")
_EMAIL: Final = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_SSN: Final = re.compile(r"\b(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}\b")
_SSN_CONTEXT: Final = re.compile(r"social\s+security|\bssn\b", re.IGNORECASE)
_UK_NINO: Final = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Run:
    """A number in the text: its span and its digits ("double four" counts as "44")."""

    start: int
    end: int
    digits: str


#: A number token: (start, end, word) with the word lower-cased.
_Token = tuple[int, int, str]
_Add = Callable[[int, int, Category], None]


def luhn_valid(digits: str) -> bool:
    """True when `digits` passes the Luhn check (what every payment card number does)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value  # digit sum of a doubled digit
    return bool(digits) and total % 10 == 0


def _number_tokens(text: str) -> Iterator[_Token]:
    """Every token that can be part of a number: digits, digit words, "double", "triple"."""
    for match in _TOKEN.finditer(text):
        word = match.group().lower()
        if word.isdigit() or word in _DIGIT_WORDS or word in _REPEATS:
            yield match.start(), match.end(), word


def _run_of(tokens: Sequence[_Token]) -> _Run | None:
    """The number `tokens` spell, or None when they hold no digit (a lone "double")."""
    digits: list[str] = []
    repeat = 1
    first: int | None = None
    last = 0
    for start, end, word in tokens:
        if word in _REPEATS:
            repeat = _REPEATS[word]
            first = start if first is None and not digits else first
            continue
        value = word if word.isdigit() else _DIGIT_WORDS[word]
        digits.append(value * repeat)
        repeat = 1
        first = start if first is None else first
        last = end
    if not digits or first is None:
        return None
    return _Run(first, last, "".join(digits))


def _joins(text: str, end: int, start: int) -> bool:
    """Whether a number token at ``start`` continues the number ending at ``end``: only spaces,
    dashes, dots or commas between them, and no sentence end ("… two six seven one. One moment"
    is a phone number and the next sentence, not one longer number)."""
    gap = text[end:start]
    if not _GAP.fullmatch(gap):
        return False
    return not (_SENTENCE_END.search(gap) and text[start : start + 1].isupper())


def number_runs(text: str) -> list[_Run]:
    """Maximal numbers in `text`: number tokens separated only by spaces, dashes, dots or commas."""
    runs: list[_Run] = []
    group: list[_Token] = []
    for token in [*_number_tokens(text), None]:
        if token is not None and (not group or _joins(text, group[-1][1], token[0])):
            group.append(token)
            continue
        run = _run_of(group)
        if run is not None:
            runs.append(run)
        group = [token] if token is not None else []
    return runs


def _by_speaker(segments: Sequence[TranscriptSegment]) -> dict[str, list[int]]:
    """Indexes of each speaker's segments, in transcript order."""
    groups: dict[str, list[int]] = {}
    for index, segment in enumerate(segments):
        groups.setdefault(segment.speaker.value, []).append(index)
    return groups


def _join_texts(texts: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The texts joined by a line break, and each text's (start, end) in the joined text."""
    offsets: list[tuple[int, int]] = []
    position = 0
    for text in texts:
        offsets.append((position, position + len(text)))
        position += len(text) + len(_SEGMENT_JOIN)
    return _SEGMENT_JOIN.join(texts), offsets


def _apply(joined: str, bounds: tuple[int, int], spans: Sequence[tuple[int, int, Category]]) -> str:
    """The part of `joined` within `bounds`, each span touching it shown as its placeholder."""
    low, high = bounds
    pieces: list[str] = []
    cursor = low
    for start, end, category in spans:
        if end <= low or start >= high:
            continue
        pieces += [joined[cursor : max(start, low)], PLACEHOLDERS[category]]
        cursor = min(end, high)
    pieces.append(joined[cursor:high])
    return "".join(pieces)


class Redactor:
    """Finds and replaces personal data in text (see the module docstring).

    Args:
        region: The tenant's ISO 3166 region (phone numbers without a country code, national ids).
    """

    def __init__(self, region: str) -> None:
        self.region = region.upper()
        self._national = NATIONAL_ID_REGIONS.get(self.region)

    def spans(self, text: str) -> list[tuple[int, int, Category]]:
        """Non-overlapping (start, end, category) of what to replace, in text order."""
        found: list[tuple[int, int, Category]] = []

        def add(start: int, end: int, category: Category) -> None:
            if all(end <= s or start >= e for s, e, _ in found):
                found.append((start, end, category))

        for match in _EMAIL.finditer(text):
            add(match.start(), match.end(), Category.email)
        runs = number_runs(text)
        for run in runs:
            if CARD_MIN_DIGITS <= len(run.digits) <= CARD_MAX_DIGITS and luhn_valid(run.digits):
                add(run.start, run.end, Category.card)
        self._national_ids(text, runs, add)
        for phone in phonenumbers.PhoneNumberMatcher(text, self.region):
            add(phone.start, phone.end, Category.phone)
        for run in runs:
            if self._is_phone(run.digits):
                add(run.start, run.end, Category.phone)
        return sorted(found)

    def _national_ids(self, text: str, runs: list[_Run], add: _Add) -> None:
        if self._national is Category.ssn:
            for match in _SSN.finditer(text):
                add(match.start(), match.end(), Category.ssn)
            for run in runs:
                before = text[max(0, run.start - SSN_CONTEXT_CHARS) : run.start]
                if len(run.digits) == SSN_DIGITS and _SSN_CONTEXT.search(before):
                    add(run.start, run.end, Category.ssn)
        elif self._national is Category.national_id:
            for match in _UK_NINO.finditer(text):
                add(match.start(), match.end(), Category.national_id)

    def _is_phone(self, digits: str) -> bool:
        if not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
            return False
        try:
            number = phonenumbers.parse(digits, self.region)
        except phonenumbers.NumberParseException:
            return False
        return phonenumbers.is_valid_number(number)

    def redact_text(self, text: str) -> tuple[str, Counter[str]]:
        """`text` with placeholders, and the count of each category replaced."""
        counts: Counter[str] = Counter()
        pieces: list[str] = []
        last = 0
        for start, end, category in self.spans(text):
            pieces += [text[last:start], PLACEHOLDERS[category]]
            counts[category.value] += 1
            last = end
        pieces.append(text[last:])
        return "".join(pieces), counts

    def redact_transcript(self, transcript: Transcript) -> tuple[Transcript, Counter[str]]:
        """The transcript with placeholders in every segment, and the counts per category.

        The segments of each speaker are matched as one text, so a number that runs on into the
        speaker's next segment is found whole; each segment it touches shows the placeholder (it is
        counted once). Segment timestamps are kept.
        """
        counts: Counter[str] = Counter()
        texts = [s.text for s in transcript.segments]
        for indexes in _by_speaker(transcript.segments).values():
            joined, offsets = _join_texts([texts[i] for i in indexes])
            spans = self.spans(joined)
            counts.update(category.value for _, _, category in spans)
            for position, index in enumerate(indexes):
                texts[index] = _apply(joined, offsets[position], spans)
        segments = [
            TranscriptSegment(speaker=s.speaker, text=t, start_s=s.start_s, end_s=s.end_s)
            for s, t in zip(transcript.segments, texts, strict=True)
        ]
        redacted = Transcript.from_segments(segments, mode=transcript.mode, language=transcript.language)
        return redacted, counts


@dataclass(frozen=True)
class Redacted:
    """A transcript after the tenant's privacy policy.

    Attributes:
        transcript: What is stored and sent to the text model.
        counts: Replacements per category (every category, zeros included); None under policy `off`.
        encrypted_original: The original transcript JSON encrypted with the tenant's key (policy
            `redact_keep_encrypted` only).
    """

    transcript: Transcript
    counts: dict[str, int] | None = None
    encrypted_original: str | None = None


class TranscriptPrivacy(BaseModel):
    """A tenant's privacy settings for transcripts.

    Attributes:
        policy: off / redact (default) / redact_keep_encrypted.
        region: ISO 3166 region for phone numbers without a country code and for national ids.
        key: Fernet key (url-safe base64 of 32 bytes) for the encrypted originals; needed by
            `redact_keep_encrypted` only.
    """

    model_config = ConfigDict(frozen=True)

    policy: PrivacyPolicy = PrivacyPolicy.redact
    region: str = "US"
    key: SecretStr | None = None

    @field_validator("region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.strip().upper()

    @model_validator(mode="after")
    def _key_when_kept(self) -> TranscriptPrivacy:
        # Refuse at configuration time: an original that cannot be encrypted must not be stored.
        if self.policy is PrivacyPolicy.redact_keep_encrypted:
            if self.key is None or not self.key.get_secret_value():
                raise ValueError("policy redact_keep_encrypted needs an encryption key")
            try:
                Fernet(self.key.get_secret_value().encode())
            except ValueError:
                raise ValueError("the transcript encryption key is not a Fernet key") from None
        return self

    def apply(self, transcript: Transcript) -> Redacted:
        """The transcript as the policy stores it and sends it to the text model."""
        if self.policy is PrivacyPolicy.off:
            return Redacted(transcript)
        redacted, found = Redactor(self.region).redact_transcript(transcript)
        counts = {category.value: found.get(category.value, 0) for category in Category}
        encrypted = None
        if self.policy is PrivacyPolicy.redact_keep_encrypted and self.key is not None:
            fernet = Fernet(self.key.get_secret_value().encode())
            encrypted = fernet.encrypt(transcript.model_dump_json().encode()).decode()
        return Redacted(redacted, counts, encrypted)

    def decrypt(self, encrypted_original: str) -> Transcript:
        """The original transcript of a stored encrypted one.

        Raises:
            ValueError: No key, or the text was not encrypted with this key.
        """
        if self.key is None:
            raise ValueError("no transcript encryption key configured")
        try:
            plain = Fernet(self.key.get_secret_value().encode()).decrypt(encrypted_original.encode())
        except InvalidToken:
            raise ValueError("the encrypted transcript does not match this key") from None
        return Transcript.model_validate_json(plain)


def new_key() -> str:
    """A fresh Fernet key for `TranscriptPrivacy.key`."""
    return Fernet.generate_key().decode()
