"""A faithful local Grandstream CloudUCM / UCM63xx simulator speaking the real JSON API on loopback.

Used by the demo and the tests in place of a real PBX. See ``docs/contracts.md`` for the contract and
``docs/ucm-protocol.md`` for the behaviour it reproduces.
"""

from audiapro.ucm.simulator.config import FaultConfig, SimulatorConfig
from audiapro.ucm.simulator.export import write_ui_export
from audiapro.ucm.simulator.faults import SimulatorStats
from audiapro.ucm.simulator.runner import serve_forever
from audiapro.ucm.simulator.simulator import UcmSimulator

__all__ = [
    "FaultConfig",
    "SimulatorConfig",
    "SimulatorStats",
    "UcmSimulator",
    "serve_forever",
    "write_ui_export",
]
