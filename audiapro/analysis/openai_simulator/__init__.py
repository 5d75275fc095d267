"""A local OpenAI-compatible API for the analysis tests, limited to what the project's client sends.

The real `openai` client talks to it over loopback through `base_url`:

    sim = OpenAISimulator(OpenAISimConfig(api_key="sk-test", seed=1))
    with sim.serve(port=0) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test")

It implements `/v1/audio/transcriptions` (WAV in, `json` out), `/v1/responses` with a strict
`json_schema` format, and files and batches for `/v1/responses`, with seeded fault injection and a
billing log. A parameter, format or schema keyword the client never sends is answered with a 400
`unsupported_by_simulator` instead of being faked.
"""

from audiapro.analysis.openai_simulator.config import OpenAISimConfig
from audiapro.analysis.openai_simulator.faults import INFERENCE_ENDPOINTS, FaultKind, OpenAIFaults
from audiapro.analysis.openai_simulator.server import OpenAISimulator
from audiapro.analysis.openai_simulator.stats import BilledRequest, ModelUsage, OpenAIStats

__all__ = [
    "INFERENCE_ENDPOINTS",
    "BilledRequest",
    "FaultKind",
    "ModelUsage",
    "OpenAIFaults",
    "OpenAISimConfig",
    "OpenAISimulator",
    "OpenAIStats",
]
