"""A faithful local OpenAI-compatible API simulator for tests and offline runs.

The real `openai` client talks to it over loopback through `base_url`:

    sim = OpenAISimulator(OpenAISimConfig(api_key="sk-test", seed=1))
    with sim.serve(port=0) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test")

It implements audio transcriptions, Responses and Chat Completions with JSON-schema outputs, files,
batches and models, with seeded fault injection and billing statistics.
"""

from audiapro.analysis.openai_simulator.config import (
    DEFAULT_TEXT_MODELS,
    DEFAULT_TRANSCRIPTION_MODELS,
    INFERENCE_ENDPOINTS,
    FaultKind,
    OpenAIFaults,
    OpenAISimConfig,
)
from audiapro.analysis.openai_simulator.server import OpenAISimulator, serve_forever
from audiapro.analysis.openai_simulator.stats import BilledRequest, ModelUsage, OpenAIStats

__all__ = [
    "DEFAULT_TEXT_MODELS",
    "DEFAULT_TRANSCRIPTION_MODELS",
    "INFERENCE_ENDPOINTS",
    "BilledRequest",
    "FaultKind",
    "ModelUsage",
    "OpenAIFaults",
    "OpenAISimConfig",
    "OpenAISimulator",
    "OpenAIStats",
    "serve_forever",
]
