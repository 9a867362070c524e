"""Incidents in one place: the Appendix A categories and workflow states (``states``), moving an incident
along its workflow (``workflow``) and the queries that list and export incidents (``inbox``).

Recognition reports hits as incidents, the dashboard and ``jifang incident`` handle them, delivery sends them.
Only the pure ``states`` are re-exported here, so ``import jifang.incidents`` stays free of the database."""

from jifang.incidents.states import (
    CATEGORIES,
    GBT31000,
    NEXT_STATE,
    ROUTING_ORDER,
    State,
    can_move,
    category_problem,
    gbt31000_code,
    next_state,
)

__all__ = ["CATEGORIES", "GBT31000", "NEXT_STATE", "ROUTING_ORDER", "State", "can_move", "category_problem",
           "gbt31000_code", "next_state"]
