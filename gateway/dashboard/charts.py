"""Charts drawn here, on the server, as inline SVG: nothing fetched, nothing run in the browser, and they
print. Each is a picture only (``aria-hidden``): the page shows its numbers in a table beside it, which is
what a screen reader reads. A hidden (suppressed) number draws no bar and no point."""

from __future__ import annotations

from markupsafe import Markup, escape

BAR_HEIGHT = 26
BAR_GAP = 10
LABEL_WIDTH = 170
BAR_AREA = 360
VALUE_WIDTH = 60


def bar_chart(rows: list[tuple[str, int | None]]) -> Markup:
    """Horizontal bars, one per group, its value written at its end ("—" when hidden)."""
    largest = max((value for _label, value in rows if value), default=0) or 1
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    height = len(rows) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    parts = [f'<svg class="chart bar-chart" viewBox="0 0 {width} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-hidden="true" focusable="false">']
    for index, (label, value) in enumerate(rows):
        y = BAR_GAP + index * (BAR_HEIGHT + BAR_GAP)
        middle = y + BAR_HEIGHT / 2
        parts.append(f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{middle:.1f}" text-anchor="end" '
                     f'dominant-baseline="middle">{escape(label)}</text>')
        length = 0 if not value else max(2.0, BAR_AREA * value / largest)
        if length:
            parts.append(f'<rect class="chart-bar" x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" '
                         f'height="{BAR_HEIGHT}"></rect>')
        shown = "—" if value is None else str(value)
        parts.append(f'<text class="chart-value" x="{LABEL_WIDTH + length + 6:.1f}" y="{middle:.1f}" '
                     f'dominant-baseline="middle">{shown}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


LINE_WIDTH = 640
LINE_HEIGHT = 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 16, 16, 40


def line_chart(labels: list[str], series: list[tuple[str, str, list[int | None]]]) -> Markup:
    """Lines over the weeks, one per series (name, CSS class, values); a hidden value breaks its line.
    Each line has its own dash pattern and a legend, so colour is not the only difference."""
    count = max(len(labels), 1)
    largest = max((value for _name, _css, values in series for value in values if value), default=0) or 1
    plot_width = LINE_WIDTH - PAD_LEFT - PAD_RIGHT
    plot_height = LINE_HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(index: int) -> float:
        return PAD_LEFT + (plot_width * index / (count - 1) if count > 1 else plot_width / 2)

    def y(value: int) -> float:
        return PAD_TOP + plot_height * (1 - value / largest)

    parts = [f'<svg class="chart line-chart" viewBox="0 0 {LINE_WIDTH} {LINE_HEIGHT + 28}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-hidden="true" focusable="false">']
    # Axes, and the largest and smallest value on the left.
    parts.append(f'<line class="chart-axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_height}" '
                 f'x2="{LINE_WIDTH - PAD_RIGHT}" y2="{PAD_TOP + plot_height}"></line>')
    parts.append(f'<line class="chart-axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" '
                 f'y2="{PAD_TOP + plot_height}"></line>')
    parts.append(f'<text class="chart-label" x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end">{largest}</text>')
    parts.append(f'<text class="chart-label" x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_height}" '
                 f'text-anchor="end">0</text>')
    step = max(1, count // 6)
    for index in range(0, len(labels), step):
        parts.append(f'<text class="chart-label" x="{x(index):.1f}" y="{LINE_HEIGHT - PAD_BOTTOM + 18}" '
                     f'text-anchor="middle">{escape(labels[index])}</text>')
    for name, css, values in series:
        run: list[str] = []
        runs: list[list[str]] = []
        for index, value in enumerate(values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{x(index):.1f},{y(value):.1f}")
        if run:
            runs.append(run)
        for points in runs:
            if len(points) == 1:
                cx, cy = points[0].split(",")
                parts.append(f'<circle class="chart-point {css}" cx="{cx}" cy="{cy}" r="3"></circle>')
            else:
                parts.append(f'<polyline class="chart-line {css}" points="{" ".join(points)}"></polyline>')
    for index, (name, css, _values) in enumerate(series):
        left = PAD_LEFT + index * 200
        top = LINE_HEIGHT + 14
        parts.append(f'<line class="chart-line {css}" x1="{left}" y1="{top}" x2="{left + 28}" y2="{top}"></line>')
        parts.append(f'<text class="chart-label" x="{left + 34}" y="{top}" dominant-baseline="middle">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
