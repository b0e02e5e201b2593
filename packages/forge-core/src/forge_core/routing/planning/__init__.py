"""Planning: which candidates a request may use, in which order, known without a network call.

`Planner` (`planner`) plans each request as a lazy `Plan` of `Candidate` objects
(`candidates`), from what only the config decides, worked out once per router (`compiled`):
each order entry's deployments and the order of their models. A candidate left out is a
`Drop` with its reason (`drops`: a model the endpoint lacks, the request's needs,
``local_only``, the circuit, cached health); the deployments of one model in a balanced entry
are ranked warm-first (`balancing`).
"""

from forge_core.routing.planning.candidates import Candidate, Plan
from forge_core.routing.planning.drops import circuit_reason
from forge_core.routing.planning.planner import Planner

__all__ = ["Candidate", "Plan", "Planner", "circuit_reason"]
