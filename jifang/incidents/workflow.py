"""Moving an incident one step along 上报 → 受理 → 分派 → 处置 → 反馈 → 办结, recording who did it and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from jifang.db import Catalog
from jifang.db.models import IncidentRow, IncidentStep, TeamMemberRow
from jifang.errors import ConfigError
from jifang.incidents.states import State, can_move, next_state


def advance(catalog: Catalog, incident_id: int, to: State | str, actor: str, at: datetime, note: str = "",
            assignee: str = "") -> IncidentRow:
    """Move an incident to its next state; ConfigError (one line) when it does not exist or ``to`` is not the
    next step, or when 分派 names nobody."""
    target = State(to)
    with catalog.session() as session:
        row = session.get(IncidentRow, incident_id)
        if row is None:
            raise ConfigError(f"incident {incident_id} does not exist")
        if not can_move(row.state, target):
            expected = next_state(row.state)
            raise ConfigError(f"incident {incident_id} is {row.state}; its next step is "
                              f"{expected.value if expected else 'none (closed)'}, not {target.value}")
        if target is State.ASSIGNED and not assignee:
            raise ConfigError("分派 (assign) needs the team member it is assigned to")
        if target is State.ASSIGNED:
            members = set(session.scalars(select(TeamMemberRow.name).where(TeamMemberRow.grid == row.grid)))
            if assignee not in members:
                known = "、".join(sorted(members)) or "none: add them with `jifang team add`"
                raise ConfigError(f"{assignee!r} is not in the team of grid {row.grid} (members: {known})")
        row.state = str(target)
        session.add(IncidentStep(incident_id=incident_id, state=str(target), at=at, actor=actor, note=note,
                                 assignee=assignee))
        session.commit()
        return row
