"""Shared bits: percentiles, markdown tables, the bot's fake credentials and a wall-clock bot clock."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slackbot.backends.base import FineTuneSpec
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.sandbox.together_api import SUPPORTED_MODELS

BASE_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct"
TOGETHER_KEY = "tgp_bench_key_0123456789"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def bootstrap_ratio(
    values: Sequence[float], baseline: Sequence[float], q: float, rounds: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """A 90% interval for percentile(values, q) ÷ percentile(baseline, q), by resampling both with replacement:
    how far a ratio could move from noise alone (a p99 rests on a handful of the slowest samples)."""
    if not values or not baseline:
        return math.nan, math.nan
    rng = random.Random(seed)
    ratios = []
    for _ in range(rounds):
        top = percentile(rng.choices(values, k=len(values)), q)
        bottom = percentile(rng.choices(baseline, k=len(baseline)), q)
        ratios.append(top / bottom if bottom > 0 and not math.isinf(bottom) else math.nan)
    ratios = sorted(r for r in ratios if not math.isnan(r))
    if not ratios:
        return math.nan, math.nan
    return ratios[int(0.05 * (len(ratios) - 1))], ratios[int(0.95 * (len(ratios) - 1))]


def interval(bounds: tuple[float, float]) -> str:
    low, high = bounds
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    return "failed" if math.isinf(low) else f"{low:.2f} to {'∞' if math.isinf(high) else f'{high:.2f}'}"


def ratio(value: float, baseline: float) -> str:
    if baseline <= 0 or math.isnan(value) or math.isnan(baseline) or math.isinf(baseline):
        return "n/a"
    if math.isinf(value):
        return "failed"
    return f"{value / baseline:.2f}x"


def ms(seconds: float) -> str:
    if math.isinf(seconds):
        return "failed"
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


@dataclass
class Section:
    """One benchmark's output: a title, a markdown table and notes under it."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def utcnow() -> datetime:
    return datetime.now(UTC)


class WallClock:
    """Epoch seconds for the stand-ins, so their call logs share a time base with the bot's clock."""

    def now(self) -> float:
        return time.time()


def spec(slug: str, dataset_id: str) -> FineTuneSpec:
    return openpipe_spec(dataset_id=dataset_id, slug=slug, provider=Provider.OPENPIPE, base_model=BASE_MODEL)


def together_spec(slug: str, dataset_id: str) -> FineTuneSpec:
    return FineTuneSpec(backend="together", dataset_id=dataset_id, slug=slug, base_model=SUPPORTED_MODELS[0])
