from jifang.edge.fleet import plan

CAMERAS = [f"c{i}" for i in range(7)]


def test_first_agent_takes_everything_alone() -> None:
    assert plan(CAMERAS, set(), CAMERAS, agents=1).take == CAMERAS


def test_fair_share_with_several_agents() -> None:
    decision = plan(CAMERAS, {"c0"}, ["c3", "c4", "c5", "c6"], agents=3)  # share = ceil(7/3) = 3
    assert decision.take == ["c3", "c4"] and decision.release == []


def test_an_agent_over_its_share_hands_back_one_at_a_time() -> None:
    decision = plan(CAMERAS, set(CAMERAS), [], agents=2)  # share 4, holds 7
    assert decision.take == [] and decision.release == ["c4"]


def test_nothing_free_nothing_taken() -> None:
    assert plan(CAMERAS, {"c0"}, [], agents=2) == plan(CAMERAS, {"c0"}, [], agents=2)
    assert plan(CAMERAS, {"c0"}, [], agents=2).take == []
