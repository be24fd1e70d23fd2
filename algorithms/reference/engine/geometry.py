"""Polygons in normalised image coordinates (0..1, origin top-left)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting; a point on an edge or vertex counts as inside."""
    x, y = point
    n = len(polygon)
    if n < 3:
        return False
    inside = False
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    eps = 1e-9
    cross = (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1)
    if abs(cross) > eps:
        return False
    return (
        min(x1, x2) - eps <= x <= max(x1, x2) + eps and min(y1, y2) - eps <= y <= max(y1, y2) + eps
    )


@dataclass(frozen=True)
class Region:
    """An Area or a Mask of a rule."""

    region_id: object
    points: tuple[Point, ...]

    def contains(self, point: Point) -> bool:
        return point_in_polygon(point, self.points)


FULL_FRAME = Region(region_id=None, points=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)))


def anchor_point(box: tuple[float, float, float, float]) -> Point:
    """The point of a person box that is tested against Areas and Masks: its
    bottom centre (where the person stands)."""
    x, y, w, h = box
    return (x + w / 2.0, y + h)


def in_area(point: Point, area: Region, masks: Sequence[Region]) -> bool:
    return area.contains(point) and not any(m.contains(point) for m in masks)
