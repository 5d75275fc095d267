"""A poll flow-run process starts without the analysis stack (issue 13: CPU per tick).

Every `poll-cdrs` / `poll-shard` run is a new Python process; importing the analysis (OpenAI's
client among it) cost about a second of CPU there, for ticks that mostly load nothing to analyze.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_poll_flows_leaves_the_analysis_stack_out() -> None:
    probe = "import sys, flows.poll; print([m for m in ('openai', 'flows.analyze') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
