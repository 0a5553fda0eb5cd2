"""Command line: `slackbot run | check | demo | sandbox`."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise NotImplementedError
