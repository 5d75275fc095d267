"""The PBX session cap (``tasks/pbx.py``), checked in a pytest process of its own.

The cases live in ``pbx_sessions_cases.py``. Run inside this session, they made the end of the whole
suite hang: the Prefect test harness's shutdown drain of process-wide event services never returned
(observed only with the full suite, never with the module alone or with either half of the suite).
A separate process has its own Prefect services and its own test server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CASES = Path(__file__).with_name("pbx_sessions_cases.py")
#: The cases take about a minute; a hang fails the test instead of stalling the suite.
TIMEOUT_S = 240


def test_the_session_cap_cases_pass_in_their_own_process(pg_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(CASES)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout.splitlines()[-1]
