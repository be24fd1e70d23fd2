"""Line charts as inline SVG, drawn on the server (no script, no CDN).

Every chart draws its series in LINE_COLOUR, a colour used nowhere else on
the page: the browser test counts pixels of it to know the charts rendered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

LINE_COLOUR = "#e4572e"
FILL_COLOUR = "#e4572e"
WIDTH, HEIGHT = 360, 120
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 8, 20

Trend = list[dict[str, float]]


@dataclass
class Chart:
    title: str
    current: str
    svg: SafeString


def _points(trend: Trend) -> list[tuple[int, float]]:
    points = []
    for point in trend:
        for key, value in point.items():
            points.append((int(key), float(value)))
    return sorted(points)


def _label(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.1f}"


def svg_chart(
    trend: Trend, *, start_ms: int, end_ms: int, y_max: float, unit: str, scale: float = 1.0
) -> SafeString:
    """A line over [start_ms, end_ms] × [0, y_max]; `scale` multiplies the
    stored values (e.g. 100 for ratios shown in percent)."""
    y_max = y_max if y_max > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(1, end_ms - start_ms)

    def x(ms: int) -> float:
        return LEFT + plot_w * min(1.0, max(0.0, (ms - start_ms) / span))

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(1.0, max(0.0, value / y_max)))

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg" role="img">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = y_max * fraction
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#555">{_label(value)}{escape(unit)}</text>'
        )
    for ms, anchor in ((start_ms, "start"), (end_ms, "end")):
        moment = timezone.localtime(
            datetime.fromtimestamp(ms / 1000, tz=timezone.get_current_timezone())
        )
        parts.append(
            f'<text x="{x(ms):.1f}" y="{HEIGHT - 5}" text-anchor="{anchor}" font-size="10" '
            f'fill="#555">{moment:%m-%d %H:%M}</text>'
        )
    points = [(x(ms), y(value * scale)) for ms, value in _points(trend)]
    if points:
        line = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        base = TOP + plot_h
        area = f"{points[0][0]:.1f},{base} {line} {points[-1][0]:.1f},{base}"
        parts.append(f'<polygon points="{area}" fill="{FILL_COLOUR}" fill-opacity="0.12"/>')
        if len(points) == 1:
            px, py = points[0]
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{LINE_COLOUR}"/>')
        parts.append(
            f'<polyline class="series" points="{line}" fill="none" stroke="{LINE_COLOUR}" '
            'stroke-width="2.5" stroke-linejoin="round"/>'
        )
    else:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            f'font-size="12" fill="#999">{escape(_("no samples"))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped or numeric
