"""Planning as a package; `planner` holds it whole until it is split."""

from forge_core.routing.planning.planner import Candidate, Plan, Planner, circuit_reason

__all__ = ["Candidate", "Plan", "Planner", "circuit_reason"]
