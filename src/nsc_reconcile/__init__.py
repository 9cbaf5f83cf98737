"""nsc-reconcile: make an Azure environment match a declared desired state.

Public API (everything else is internal):

    from nsc_reconcile import load_desired_state, DesiredStateError
    state = load_desired_state("desired_state.yaml", env="prod")
"""

from nsc_reconcile.errors import DesiredStateError, Location, Problem
from nsc_reconcile.loader import load_desired_state
from nsc_reconcile.model.state import DesiredState

__all__ = ["DesiredState", "DesiredStateError", "Location", "Problem", "load_desired_state"]
