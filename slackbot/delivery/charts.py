"""The loss curve as a PNG: training (and evaluation) loss by step, drawn headless with matplotlib's Agg canvas.

Readable in Slack's light and dark themes alike: the image carries its own opaque background (a transparent one
would put dark text on Slack's dark theme), and each colour has at least 3:1 contrast with it (WCAG's bound for
graphics). A Figure of its own per chart, no pyplot: nothing global, so the notifier's threads can draw at once.
matplotlib is imported with the first chart, not with the bot: it adds seconds to a start, and a bot whose
services report no metrics never draws one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from slackbot.text import plain

BACKGROUND: Final = "#FFFFFF"
INK: Final = "#1D1C1D"  # titles, labels, ticks
GRID: Final = "#DDDDDD"
TRAIN: Final = "#1264A3"  # blue
EVAL: Final = "#C2185B"  # magenta, told apart from the blue by hue and by its markers too
WIDTH_PX: Final = 960
HEIGHT_PX: Final = 540
DPI: Final = 120


@dataclass(frozen=True)
class Chart:
    png: bytes
    title: str  # the file's title in Slack (plain text)
    alt_text: str  # for screen readers
    last_step: int  # the last step drawn


def loss_chart(name: str, points: Sequence[tuple[int, float | None, float | None]], *, final: bool) -> Chart:
    """The chart of `points` ((step, train loss, eval loss), by step) for the job called `name`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [(s, t) for s, t, _ in points if t is not None and math.isfinite(t)]
    evals = [(s, e) for s, _, e in points if e is not None and math.isfinite(e)]
    last_step = max((s for s, _, _ in points), default=0)
    shown = plain(name, 80, one_line=True)
    state = "final" if final else f"step {last_step:,}"
    title = f"{shown} — loss curve ({state})"

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_facecolor(BACKGROUND)
    if train:
        axes.plot(*zip(*train, strict=True), color=TRAIN, linewidth=1.8, label="training loss")
    if evals:
        axes.plot(
            *zip(*evals, strict=True), color=EVAL, linewidth=1.8, marker="o", markersize=4, label="evaluation loss"
        )
    # parse_math off: a job's name with "$" in it is text, not a formula for mathtext to choke on.
    axes.set_title(title, color=INK, fontsize=12, loc="left", parse_math=False)
    axes.set_xlabel("step", color=INK)
    axes.set_ylabel("loss", color=INK)
    axes.tick_params(colors=INK)
    for spine in axes.spines.values():
        spine.set_color(INK)
    axes.grid(True, color=GRID, linewidth=0.8)
    if train or evals:
        legend = axes.legend(loc="upper right", facecolor=BACKGROUND, edgecolor=GRID)
        for text in legend.get_texts():
            text.set_color(INK)
    else:
        axes.text(0.5, 0.5, "no loss reported yet", color=INK, ha="center", va="center", transform=axes.transAxes)
    # Fixed margins rather than tight_layout, which draws the figure once more to measure it.
    figure.subplots_adjust(left=0.08, right=0.98, top=0.91, bottom=0.11)
    buffer = io.BytesIO()
    # A light compression: the file is a few kB larger, the encoding several times faster.
    figure.savefig(
        buffer, format="png", dpi=DPI, facecolor=BACKGROUND, transparent=False, pil_kwargs={"compress_level": 2}
    )

    latest = f"training loss {train[-1][1]:.4g}" if train else "no training loss"
    if evals:
        latest += f", evaluation loss {evals[-1][1]:.4g}"
    alt = plain(f"Loss curve of {name} through step {last_step}: {latest}.", 1000, one_line=True)
    return Chart(png=buffer.getvalue(), title=title, alt_text=alt, last_step=last_step)


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two #RRGGBB colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)
