"""The crowd's arithmetic (issue 19): what phones send, folded into the signals a curator maps."""

from __future__ import annotations

import pytest

from sensors.audience.crowd import Crowd
from sensors.audience.model import AudienceSensorConfig

CONFIG = AudienceSensorConfig.model_validate(
    {
        "kind": "audience",
        "rate": 10,
        "offers": {
            "lantern": {"type": "tap"},
            "season": {
                "type": "vote",
                "choices": {"spring": {"zh": "春", "en": "Spring"}, "autumn": {"zh": "秋", "en": "Autumn"}},
            },
            "wind": {"type": "slider", "range": [0, 10]},
            "shake": {"type": "motion"},
        },
    }
)


@pytest.fixture
def crowd() -> Crowd:
    crowd = Crowd(CONFIG)
    for phone in ("a", "b", "c", "d"):
        crowd.join(phone)
    return crowd


def test_taps_are_counted_exactly_and_per_second_over_the_last_ten_ticks(crowd: Crowd):
    for _ in range(7):
        assert crowd.tap("a", "lantern")
    assert crowd.tap("b", "lantern")
    frame = crowd.frame(0.0)
    assert frame["lantern.taps"] == 8 and frame["lantern.taps_per_s"] == 8.0
    for tick in range(1, 10):
        frame = crowd.frame(tick / 10)
    assert frame["lantern.taps_per_s"] == 8.0  # still inside the last second
    frame = crowd.frame(1.0)
    assert frame["lantern.taps_per_s"] == 0.0 and frame["lantern.taps"] == 8
    assert not crowd.tap("stranger", "lantern") and not crowd.tap("a", "nothing")
    assert crowd.dropped == 2


def test_one_ballot_per_phone_per_round_and_a_new_round_when_a_vote_opens_again(crowd: Crowd):
    assert crowd.vote("a", "season", "spring") == (False, "closed")
    crowd.set({"season.open": True})
    assert crowd.vote("a", "season", "spring") == (True, None)
    assert crowd.vote("a", "season", "autumn") == (False, "again")
    assert crowd.vote("b", "season", "autumn") == (True, None)
    assert crowd.vote("c", "season", "autumn") == (True, None)
    crowd.leave("c")  # a phone that leaves keeps its ballot
    frame = crowd.frame(0.0)
    assert frame["season.votes"] == 3 and frame["season.leader"] == "autumn" and frame["season.voting"]
    assert frame["season.autumn"] == pytest.approx(2 / 3) and frame["season.spring"] == pytest.approx(1 / 3)
    crowd.set({"season.open": False})
    assert crowd.frame(0.1)["season.votes"] == 3  # closing keeps the result
    crowd.set({"season.open": True})
    frame = crowd.frame(0.2)
    assert frame["season.votes"] == 0 and frame["season.leader"] == "" and frame["season.spring"] == 0.0
    assert crowd.vote("a", "season", "spring") == (True, None)  # a new round: a new ballot
    assert crowd.vote("d", "season", "winter") == (False, "invalid")


def test_a_tie_goes_to_the_choice_declared_first(crowd: Crowd):
    crowd.set({"season.open": True})
    crowd.vote("a", "season", "autumn")
    crowd.vote("b", "season", "spring")
    assert crowd.frame(0.0)["season.leader"] == "spring"


def test_sliders_motion_and_languages(crowd: Crowd):
    for phone, value in (("a", 2.0), ("b", 4.0), ("c", 6.0)):
        assert crowd.slide(phone, "wind", value)
    assert not crowd.slide("d", "wind", 11.0) and not crowd.slide("d", "wind", float("nan"))
    crowd.motion("a", "shake", 0.8, now=0.0)
    crowd.motion("b", "shake", 0.4, now=0.5)
    crowd.language("a", "en")
    crowd.language("b", "zh")
    crowd.language("c", "zh")
    assert not crowd.language("d", "fr")
    frame = crowd.frame(1.0)
    assert frame["wind.mean"] == pytest.approx(4.0) and frame["wind.count"] == 3
    assert frame["wind.spread"] == pytest.approx((8 / 3) ** 0.5)
    assert frame["shake.energy"] == pytest.approx(0.6) and frame["shake.count"] == 2
    assert frame["language.zh"] == pytest.approx(2 / 3) and frame["language.leader"] == "zh"
    frame = crowd.frame(1.2)  # a's motion is more than a second old
    assert frame["shake.energy"] == pytest.approx(0.4) and frame["shake.count"] == 1
    crowd.leave("c")
    assert crowd.frame(1.3)["wind.count"] == 2  # a slider counts while its phone is here


def test_while_paused_nothing_counts(crowd: Crowd):
    crowd.set({"paused": True, "season.open": True})
    assert not crowd.tap("a", "lantern")
    assert crowd.vote("a", "season", "spring") == (False, "closed")
    assert not crowd.slide("a", "wind", 3.0)
    assert crowd.frame(0.0)["lantern.taps"] == 0 and crowd.dropped == 3
    crowd.set({"paused": False})
    assert crowd.tap("a", "lantern")


def test_a_phone_is_its_session_however_many_tabs(crowd: Crowd):
    crowd.join("a")
    assert crowd.count == 4
    crowd.leave("a")
    assert crowd.count == 4
    crowd.leave("a")
    assert crowd.count == 3
    state = crowd.state()
    assert state["count"] == 3 and state["open"] == {"season": False} and state["results"] == {}
