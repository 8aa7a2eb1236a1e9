"""A local, strict stand-in for Polymarket's Data API, Gamma and CLOB V2 (see `simulator.py`).

Use `Simulator` in-process (tests) or run `python simulator.py --scenario …` (demo, other
processes; drive it with `RemoteSimulator`).
"""

from sim.control import RemoteSimulator
from sim.core import Simulator
from sim.scenario import RandomWalkConfig
from sim.state import SimConfig

__all__ = ["RandomWalkConfig", "RemoteSimulator", "SimConfig", "Simulator"]
