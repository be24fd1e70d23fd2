"""Geometry, task-body parsing and rule timing of the reference engine, with
synthetic detections (no video)."""

from __future__ import annotations

import pytest

from algorithms.reference.engine.detector import hog_confidence
from algorithms.reference.engine.geometry import (
    FULL_FRAME,
    Region,
    anchor_point,
    in_area,
    point_in_polygon,
)
from algorithms.reference.engine.rules import (
    Detection,
    RuleState,
    ValidationError,
    parse_rule,
    parse_sensitivity,
    parse_task_info,
    url_scheme,
)
from tests.reference.conftest import polygon, task_body

SQUARE = ((0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6))
# an L-shaped (concave) polygon: the notch (0.5..1, 0..0.5) is outside
ELL = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.4, 0.4), True),
        ((0.1, 0.4), False),
        ((0.7, 0.4), False),
        ((0.4, 0.7), False),
        ((0.2, 0.4), True),  # on an edge
        ((0.6, 0.6), True),  # on a vertex
    ],
)
def test_point_in_a_square(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, SQUARE) is inside


def test_point_in_a_concave_polygon() -> None:
    assert point_in_polygon((0.25, 0.25), ELL)
    assert point_in_polygon((0.75, 0.75), ELL)
    assert not point_in_polygon((0.75, 0.25), ELL)


def test_degenerate_polygons_contain_nothing() -> None:
    assert not point_in_polygon((0.5, 0.5), ((0, 0), (1, 1)))


def test_a_box_counts_where_the_person_stands() -> None:
    # box from (0.1, 0.1) size 0.2 x 0.4: feet at (0.2, 0.5)
    assert anchor_point((0.1, 0.1, 0.2, 0.4)) == pytest.approx((0.2, 0.5))


def test_masks_cut_holes_in_areas() -> None:
    area = Region(1, SQUARE)
    mask = Region("m", ((0.2, 0.2), (0.4, 0.2), (0.4, 0.6), (0.2, 0.6)))
    assert in_area((0.5, 0.4), area, [mask])
    assert not in_area((0.3, 0.4), area, [mask])
    assert not in_area((0.9, 0.9), FULL_FRAME, [Region("all", FULL_FRAME.points)])


def person(feet_x: float, feet_y: float, confidence: float = 0.99) -> Detection:
    w, h = 0.05, 0.15
    return Detection(box=(feet_x - w / 2, feet_y - h, w, h), confidence=confidence)


def rule(**ext: object):
    body = task_body("t", "x.mp4", area=(0.2, 0.2, 0.6, 0.6))["TaskInfo"]["RulesParams"][0]
    body["ExtendParams"] = ext
    return parse_rule(body, 0, "r")


def run(state: RuleState, frames: list[tuple[float, list[Detection]]]) -> list[float]:
    return [a.time for t, dets in frames for a in state.update(t, dets)]


def seconds(start: float, stop: float, step: float = 0.2) -> list[float]:
    n = round((stop - start) / step)
    return [round(start + i * step, 6) for i in range(n)]


def test_an_event_per_occupation_by_default() -> None:
    state = RuleState(rule())
    inside, outside = [person(0.4, 0.5)], [person(0.9, 0.9)]
    frames = [(t, inside) for t in seconds(0, 3)]
    frames += [(t, outside) for t in seconds(3, 5)]  # gone for 2 s: occupation ends
    frames += [(t, inside) for t in seconds(5, 6)]
    assert run(state, frames) == [0.0, 5.0]


def test_short_gaps_do_not_end_an_occupation() -> None:
    state = RuleState(rule())
    inside = [person(0.4, 0.5)]
    frames = [(t, inside if int(t * 5) % 3 else []) for t in seconds(0, 6)]
    assert run(state, frames) == [0.2]


def test_duration_threshold_waits_for_a_lasting_presence() -> None:
    state = RuleState(rule(DurationThreshold=2))
    inside = [person(0.4, 0.5)]
    frames = [(t, inside) for t in seconds(10, 11.6)]  # 1.6 s: too short
    frames += [(t, []) for t in seconds(11.6, 13)]
    frames += [(t, inside) for t in seconds(13, 16)]
    assert run(state, frames) == [15.0]


def test_repeat_interval_silences_the_rule_and_repeats_while_present() -> None:
    state = RuleState(rule(RepeatAlarmIntervalThreshold=1))
    inside = [person(0.4, 0.5)]
    assert run(state, [(t, inside) for t in seconds(0, 3.1)]) == [0.0, 1.0, 2.0, 3.0]


def test_repeat_interval_also_holds_back_new_occupations() -> None:
    state = RuleState(rule(RepeatAlarmIntervalThreshold=10))
    inside = [person(0.4, 0.5)]
    frames = [(t, inside) for t in seconds(0, 1)]
    frames += [(t, []) for t in seconds(1, 4)]
    frames += [(t, inside) for t in seconds(4, 12)]
    assert run(state, frames) == [0.0, 10.0]


def test_a_rule_without_event_id_never_fires() -> None:
    body = task_body("t", "x.mp4", event_id=None)["TaskInfo"]["RulesParams"][0]
    state = RuleState(parse_rule(body, 0, "r"))
    assert run(state, [(0.0, [person(0.5, 0.5)])]) == []


def test_sensitivity_sets_the_confidence_needed() -> None:
    weak = [person(0.4, 0.5, confidence=0.6)]
    assert run(RuleState(rule(Sensitivity="高")), [(0.0, weak)]) == [0.0]
    assert run(RuleState(rule(Sensitivity="低")), [(0.0, weak)]) == []
    assert run(RuleState(rule()), [(0.0, weak)]) == []
    assert parse_sensitivity("HIGH", "s") < parse_sensitivity("MEDIUM", "s")
    assert parse_sensitivity(0.2, "s") == pytest.approx(parse_sensitivity(20, "s"))
    with pytest.raises(ValidationError) as err:
        parse_sensitivity(150, "x.Sensitivity")
    assert err.value.field == "x.Sensitivity"


def test_the_alarm_carries_only_the_people_inside() -> None:
    state = RuleState(rule())
    [alarm] = state.update(0.0, [person(0.4, 0.5), person(0.9, 0.9)])
    assert [d.box for d in alarm.objects] == [person(0.4, 0.5).box]
    assert alarm.area.region_id == 7


def test_hog_margins_map_to_confidences() -> None:
    assert hog_confidence(0.5) == pytest.approx(0.5)
    assert 0.7 < hog_confidence(1.0) < 0.75
    assert hog_confidence(3.0) > 0.99


def test_task_info_parsing_and_defaults() -> None:
    info = task_body("t", "rtsp://cam/x")["TaskInfo"]
    info["RulesParams"].append({"EventID": "ANY"})  # no Areas: the whole frame
    spec = parse_task_info(info)
    assert spec.url == "rtsp://cam/x" and spec.scheme == "rtsp"
    assert spec.rules[0].areas[0].points == tuple(
        (p["PointX"], p["PointY"]) for p in polygon(0, 0, 1, 1)
    )
    assert spec.rules[1].areas == (FULL_FRAME,)
    assert spec.rules[1].duration_s == 0 and spec.rules[1].repeat_s == 0


def test_rect_areas_become_polygons() -> None:
    r = parse_rule(
        {
            "EventID": "E",
            "Areas": [
                {
                    "AreaID": 1,
                    "AreaType": "RECT",
                    "Points": [{"PointX": 0.1, "PointY": 0.2}, {"PointX": 0.3, "PointY": 0.4}],
                }
            ],
        },
        0,
        "r",
    )
    assert r.areas[0].contains((0.2, 0.3)) and not r.areas[0].contains((0.5, 0.3))


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("rtsp://h/x", "rtsp"),
        ("RTMP://h/live", "rtmp"),
        ("https://h/a.flv", "https"),
        ("file:///v.mp4", "file"),
        ("/data/v.mp4", "file"),
        ("relative/v.mp4", "file"),
    ],
)
def test_url_schemes(url: str, scheme: str) -> None:
    assert url_scheme(url) == scheme


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.update(Areas=[{"Points": []}]), "TaskInfo.RulesParams[0].Areas[0].Points"),
        (
            lambda r: r.update(Areas=[{"Points": [{"PointX": 0.1}] * 3}]),
            "TaskInfo.RulesParams[0].Areas[0].Points[0].PointY",
        ),
        (
            lambda r: r.update(Masks=[{"AreaType": "CIRCLE", "Points": []}]),
            "TaskInfo.RulesParams[0].Masks[0].AreaType",
        ),
        (
            lambda r: r.update(ExtendParams={"RepeatAlarmIntervalThreshold": "soon"}),
            "TaskInfo.RulesParams[0].ExtendParams.RepeatAlarmIntervalThreshold",
        ),
        (lambda r: r.update(EventID=5), "TaskInfo.RulesParams[0].EventID"),
    ],
)
def test_bad_rules_name_the_field(mutate, field: str) -> None:
    info = task_body("t", "rtsp://cam/x")["TaskInfo"]
    mutate(info["RulesParams"][0])
    with pytest.raises(ValidationError) as err:
        parse_task_info(info)
    assert err.value.field == field
