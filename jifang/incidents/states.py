"""Incident reports of DB3310/T 55-2019 Appendix A: categories, workflow states, GB/T 31000 codes, routing.
Pure data and rules: no database, so anything may import it cheaply."""

from __future__ import annotations

import enum

# Appendix A 全科网格工作任务清单: category -> sub-categories
CATEGORIES: dict[str, tuple[str, ...]] = {
    "人员管理": ("常住人员", "外来人员", "重点人员", "特殊人员"),
    "案事件": ("矛盾纠纷", "涉稳事件", "安全生产事故", "治安刑事案件"),
    "隐患点": ("消防隐患", "安全隐患", "环境污染", "食药安全", "治安隐患"),
    "其他": ("其他",),
}

# GB/T 31000 codes stored beside the local category where one exists (CaseType / EventType code tables)
GBT31000: dict[tuple[str, str], str] = {
    ("案事件", "治安刑事案件"): "CaseType:04",  # 有关刑事案件
    ("案事件", "涉稳事件"): "CaseType:02",  # 群体性事件
    ("案事件", "安全生产事故"): "CaseType:01",  # 安全事故
    ("案事件", "矛盾纠纷"): "EventType:99",  # 其他 (the kind of dispute is unknown to a camera)
}

# Grid team roles of §6, in the order incidents reach them: 专职网格员 and 网格长 first
ROUTING_ORDER = ("专职网格员", "网格长", "网格指导员", "网格业务指导员", "兼职网格员")


class State(enum.StrEnum):
    REPORTED = "上报"
    ACCEPTED = "受理"
    ASSIGNED = "分派"
    HANDLED = "处置"
    FEEDBACK = "反馈"
    CLOSED = "办结"


NEXT_STATE = {State.REPORTED: State.ACCEPTED, State.ACCEPTED: State.ASSIGNED, State.ASSIGNED: State.HANDLED,
              State.HANDLED: State.FEEDBACK, State.FEEDBACK: State.CLOSED}


def category_problem(category: str, subcategory: str) -> str | None:
    """Why (category, subcategory) is not an Appendix A pair, or None."""
    if category not in CATEGORIES:
        return f"category must be one of {', '.join(CATEGORIES)}, got {category!r}"
    if subcategory not in CATEGORIES[category]:
        return f"sub-category of {category} must be one of {', '.join(CATEGORIES[category])}, got {subcategory!r}"
    return None


def gbt31000_code(category: str, subcategory: str) -> str | None:
    return GBT31000.get((category, subcategory))


def can_move(current: State | str, target: State | str) -> bool:
    return NEXT_STATE.get(State(current)) == State(target)


def next_state(current: State | str) -> State | None:
    """The one state an incident in ``current`` may move to; None once closed."""
    return NEXT_STATE.get(State(current))
