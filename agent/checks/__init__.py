"""Local health checks that gate a service's heartbeat: the grammar of
``check = "KIND:TARGET"`` (:mod:`agent.checks.grammar`) and the runners
(:mod:`agent.checks.runners`), and flap damping (:mod:`agent.checks.damping`)."""

from agent.checks.damping import Damped, damped
from agent.checks.grammar import CHECK_KINDS, CheckSpec, parse_check
from agent.checks.runners import Check, build_check

__all__ = ["CHECK_KINDS", "Check", "CheckSpec", "Damped", "build_check", "damped", "parse_check"]
