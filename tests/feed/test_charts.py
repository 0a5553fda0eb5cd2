"""The loss-curve PNG: a valid image of the expected size, opaque, readable on Slack's light and dark themes,
and the job's name drawn as text (no mathtext, no secrets)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from matplotlib.image import imread

from slackbot.delivery import charts
from slackbot.text import remember_secrets

POINTS = [(s, 2.0 / (1 + s / 50), 2.1 / (1 + s / 45) if s % 25 == 0 else None) for s in range(1, 301)]


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The PNG's chunks (type, data), each CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    found, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"bad CRC in {kind!r}"
        found.append((kind, data))
        at += 12 + length
    return found


def test_the_chart_is_a_valid_png_of_the_expected_size() -> None:
    chart = charts.loss_chart("support-llama", POINTS, final=False)
    chunks = _chunks(chart.png)
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert (width, height) == (charts.WIDTH_PX, charts.HEIGHT_PX) == (960, 540)
    pixels = imread(io.BytesIO(chart.png), format="png")
    assert pixels.shape[:2] == (540, 960)
    assert chart.last_step == 300
    assert chart.title == "support-llama — loss curve (step 300)"
    assert "training loss 0.2857" in chart.alt_text and "evaluation loss" in chart.alt_text


def test_the_background_is_opaque_and_the_lines_are_drawn_in_their_colours() -> None:
    pixels = imread(io.BytesIO(charts.loss_chart("x", POINTS, final=True).png), format="png")
    if pixels.shape[2] == 4:
        assert np.all(pixels[:, :, 3] == 1.0), "a transparent pixel would show Slack's theme through the chart"
    rgb = (pixels[:, :, :3] * 255).round().astype(int)
    assert tuple(rgb[0, 0]) == tuple(int(charts.BACKGROUND[i : i + 2], 16) for i in (1, 3, 5))

    def present(colour: str) -> int:
        target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        return int(np.sum(np.all(np.abs(rgb - target) <= 8, axis=2)))

    assert present(charts.TRAIN) > 500 and present(charts.EVAL) > 100


def test_every_colour_has_contrast_with_the_background() -> None:
    # WCAG asks 3:1 of graphics and 4.5:1 of text; the image keeps its own background in either Slack theme.
    assert charts.contrast(charts.INK, charts.BACKGROUND) >= 4.5
    for colour in (charts.TRAIN, charts.EVAL):
        assert charts.contrast(colour, charts.BACKGROUND) >= 4.5
    assert charts.contrast(charts.TRAIN, charts.EVAL) > 1.0  # told apart by hue and by the markers too


def test_a_name_is_drawn_as_typed_without_secrets_or_formulas() -> None:
    remember_secrets("hunter2-very-secret")
    chart = charts.loss_chart("cost $5 and $6 hunter2-very-secret xoxb-123-456-abc", POINTS, final=False)
    assert chart.title == "cost $5 and $6 [redacted] [redacted] — loss curve (step 300)"
    assert "hunter2" not in chart.alt_text and "xoxb-" not in chart.alt_text


def test_no_points_still_draws_a_readable_chart() -> None:
    chart = charts.loss_chart("empty", [], final=True)
    assert chart.last_step == 0 and _chunks(chart.png)[0][0] == b"IHDR"
