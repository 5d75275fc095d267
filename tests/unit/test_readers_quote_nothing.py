"""A file the readers refuse is described without quoting its content.

Whatever a reader's whole-file error says ends up in the failed run's state message, which the Prefect
UI shows to anyone who can open the run; the file may be any readable file that is no CDR export
(its "header" is then its first line).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audiapro.cdr.readers import ImportFormatError, iter_cdr_file

SECRET = "hunter2-secret-5f1c"


def refusal(path: Path, content: str | bytes) -> str:
    """The readers' error for a file at ``path`` holding ``content`` (text is written as UTF-8)."""
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    with pytest.raises(ImportFormatError) as caught:
        list(iter_cdr_file(path))
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"root:{SECRET}:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\n",
         "Found: 1 column, none of them a UCM CDR column."),
        (f"name,{SECRET}\nalice,bob\n", "Found: 2 columns, none of them a UCM CDR column."),
        (f"Unique ID,Caller Number,{SECRET}\n1.1,203,x\n",
         "Found: 'Unique ID', 'Caller Number' and 1 other column."),
    ],
    ids=["passwd", "other-csv", "some-cdr-columns"],
)  # fmt: skip
def test_a_csv_without_the_key_columns_is_described_by_its_known_columns_only(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = refusal(tmp_path / "file.csv", text)
    assert message.startswith("CDR file lacks columns needed to identify a leg") and expected in message
    assert SECRET not in message


def test_a_header_that_is_not_utf8_is_named_by_its_column_number(tmp_path: Path) -> None:
    message = refusal(tmp_path / "file.csv", f"Unique ID,{SECRET}\xe4\n1.1,x\n".encode("latin-1"))
    assert "header row (line 1) is not UTF-8 text: invalid UTF-8 byte 0xE4 in column 2." in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'{{"{SECRET}": 1, "other": 2}}', "its top-level object has 2 keys, none of them cdr_root, cdr."),
        (f'{{"response": {{"error_msg": "{SECRET}"}}, "status": -1}}',
         "holds a UCM error reply (status -1), not CDRs."),
        (f'{{"status": "{SECRET}"}}', "holds a UCM error reply, not CDRs."),
    ],
    ids=["keys", "error-detail", "status-text"],
)  # fmt: skip
def test_a_json_document_without_cdrs_is_described_without_its_keys_or_values(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = refusal(tmp_path / "file.json", text)
    assert expected in message and SECRET not in message
