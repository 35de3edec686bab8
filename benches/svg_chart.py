"""Plain hand-written SVG bar charts for the bench harnesses.

No dependencies beyond the standard library: the harnesses run on test
machines where nothing else is installed. Two layouts, one style (white
background, sans-serif, the ColorBrewer "Dark2" colours):

  hbar_panels   horizontal bars in titled panels, a value after each bar
                (benches/netperf.py: every stream and the aggregate, per test)
  grouped_bars  vertical bars grouped along x, one colour per series, the
                value on each bar and an optional min-max line
                (benches/packet_rate.py: frame size on x, Mpps per switch)

Both return the SVG document as a string.
"""

import math
from xml.sax.saxutils import escape

COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
BAR = COLORS[0]
HIGHLIGHT = COLORS[1]


def document(width, height, parts):
    """The SVG around drawn parts (a list of element strings)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(parts) + "\n</svg>\n")


def text(x, y, s, size=11, anchor=None, bold=False, fill=None):
    attrs = f' font-size="{size}"'
    if anchor:
        attrs += f' text-anchor="{anchor}"'
    if bold:
        attrs += ' font-weight="bold"'
    if fill:
        attrs += f' fill="{fill}"'
    return f'<text x="{x}" y="{y}"{attrs}>{escape(str(s))}</text>'


def hbar_panels(panels, fmt="{:.1f}", bar_h=16, gap=4, label_w=330, plot_w=520):
    """panels: [(heading, [(label, value, highlight), ...]), ...]. Each panel
    is scaled to its own largest value; highlighted rows are bold, orange."""
    y = 10
    parts = []
    for heading, rows in panels:
        top = max(v for _, v, _ in rows) or 1.0
        parts.append(text(10, y + 14, heading, size=14, bold=True))
        y += 24
        for label, v, hl in rows:
            w = plot_w * v / top
            parts.append(text(label_w - 6, y + 12, label, anchor="end", bold=hl))
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{HIGHLIGHT if hl else BAR}"/>')
            parts.append(text(f"{label_w + w + 4:.1f}", y + 12, fmt.format(v)))
            y += bar_h + gap
        y += 14
    return document(label_w + plot_w + 80, y, parts)


def nice_step(top, ticks=5):
    """A round tick step (1, 2 or 5 times a power of ten) giving about
    `ticks` gridlines up to `top`."""
    raw = top / ticks if top > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if raw <= m * mag)


def grouped_bars(title, unit, groups, series, values, ranges=None, subtitle="", notes=(), colors=None,
                 fmt=lambda v: f"{v:.2f}", bar_w=34, bar_gap=4, group_gap=36, plot_h=300):
    """Vertical bars: one group per entry of `groups` (x axis), one bar per
    series in each group, coloured per series, with a legend.

    values: {(series, group): value}; a missing pair leaves a gap.
    ranges: {(series, group): (low, high)}, drawn as a thin line across
    the bar (the spread of the runs behind the value).
    notes: {(series, group): "?"}-style suffixes for the printed value,
    or lines of text under the chart when given as a sequence of strings.
    colors: {series: colour}, so a series keeps its colour from chart to
    chart (default: COLORS in series order).
    """
    ranges = ranges or {}
    colors = colors or {}
    color_of = {name: colors.get(name, COLORS[i % len(COLORS)]) for i, name in enumerate(series)}
    suffix = notes if isinstance(notes, dict) else {}
    footer = [] if isinstance(notes, dict) else list(notes)
    tops = list(values.values()) + [hi for _, hi in ranges.values()]
    top = max(tops, default=0) or 1.0
    step = nice_step(top)
    axis_top = step * -(-top // step)
    left, right, head = 60, 20, 56 if subtitle else 40
    legend_w = 14 + max((len(s) for s in series), default=0) * 7 + 16
    group_w = len(series) * (bar_w + bar_gap) - bar_gap
    plot_w = len(groups) * group_w + (len(groups) + 1) * group_gap
    width = max(left + plot_w + right + legend_w,
                20 + 6 * max((len(s) for s in [subtitle, *footer]), default=0))
    base = head + 14 + plot_h
    parts = [text(10, 22, title, size=14, bold=True)]
    if subtitle:
        parts.append(text(10, 40, subtitle, size=11, fill="#444444"))
    # Gridlines and y labels.
    k = 0
    while k * step <= axis_top + step / 1e6:
        v = k * step
        y = base - plot_h * v / axis_top
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                     f'stroke="#dddddd" stroke-width="1"/>')
        parts.append(text(left - 6, f"{y + 4:.1f}", f"{v:g}", size=10, anchor="end"))
        k += 1
    parts.append(text(12, f"{head + 4:.1f}", unit, size=11, bold=True))
    parts.append(f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#333333"/>')
    for gi, group in enumerate(groups):
        gx = left + group_gap + gi * (group_w + group_gap)
        parts.append(text(f"{gx + group_w / 2:.1f}", base + 18, group, size=12, anchor="middle", bold=True))
        for si, name in enumerate(series):
            v = values.get((name, group))
            if v is None:
                continue
            x = gx + si * (bar_w + bar_gap)
            h = plot_h * v / axis_top
            color = color_of[name]
            parts.append(f'<rect x="{x}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" fill="{color}">'
                         f'<title>{escape(f"{name}, {group}: {fmt(v)} {unit}")}</title></rect>')
            label_y = base - h
            if (name, group) in ranges:
                lo, hi = ranges[(name, group)]
                cx = x + bar_w / 2
                y_lo, y_hi = base - plot_h * lo / axis_top, base - plot_h * hi / axis_top
                parts.append(f'<line x1="{cx:.1f}" y1="{y_lo:.1f}" x2="{cx:.1f}" y2="{y_hi:.1f}" '
                             f'stroke="#222222" stroke-width="1.5"/>')
                for yy in (y_lo, y_hi):
                    parts.append(f'<line x1="{cx - 5:.1f}" y1="{yy:.1f}" x2="{cx + 5:.1f}" y2="{yy:.1f}" '
                                 f'stroke="#222222" stroke-width="1.5"/>')
                label_y = min(label_y, y_hi)
            parts.append(text(f"{x + bar_w / 2:.1f}", f"{label_y - 4:.1f}", fmt(v) + suffix.get((name, group), ""),
                              size=10, anchor="middle"))
    # Legend.
    lx = left + plot_w + right
    for si, name in enumerate(series):
        ly = head + 14 + si * 20
        parts.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{color_of[name]}"/>')
        parts.append(text(lx + 18, ly + 10, name))
    y = base + 40
    for line in footer:
        parts.append(text(10, y, line, size=10, fill="#444444"))
        y += 14
    return document(width, y, parts)
