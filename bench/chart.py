#!/usr/bin/env python3
"""The benchmark chart: throughput relative to uvicorn per scenario, grouped bars.

``bench/suite.py`` calls :func:`draw` with the ratios of its run; to redraw a
chart from a suite result::

    python bench/chart.py bench/results/suite-20261123-150000.json out.png

Needs matplotlib (``pip install -r bench/requirements.txt``); it renders with
the Agg backend, so no display is needed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Bar order and colours: monoceros first and strong, the peers muted.
SERVERS = ("monoceros", "uvicorn", "granian", "hypercorn")
COLOURS = {"monoceros": "#d9480f", "uvicorn": "#495057", "granian": "#4dabf7", "hypercorn": "#a9e34b"}

ChartGroup = tuple[str, dict[str, float]]  # (scenario label, server -> throughput ratio to uvicorn)


def draw(path: Path, groups: Sequence[ChartGroup], title: str, footnote: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(SERVERS)
    fig, ax = plt.subplots(figsize=(12, 5.2), dpi=110)
    bars: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in SERVERS}
    for x, (_, ratios) in enumerate(groups):
        present = [name for name in SERVERS if name in ratios]  # centred on the tick, however many
        for j, name in enumerate(present):
            bars[name][0].append(x + width * (j + 0.5 - len(present) / 2))
            bars[name][1].append(ratios[name])
    for name, (xs, ys) in bars.items():
        drawn = ax.bar(xs, ys, width, label=name, color=COLOURS[name], zorder=3)
        if name == "monoceros":
            ax.bar_label(drawn, labels=[f"{y:.2f}x" for y in ys], fontsize=8, padding=2)
    ax.axhline(1.0, color="#212529", linewidth=0.8, zorder=2)
    ax.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8.5)
    ax.set_ylabel("throughput relative to uvicorn (higher is better)")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", color="#dee2e6", zorder=0)
    ax.set_axisbelow(True)
    ax.legend(ncols=len(SERVERS), loc="upper right", fontsize=9, frameon=False)
    top = max((y for _, ratios in groups for y in ratios.values()), default=1.0)
    ax.set_ylim(0, top * 1.18)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.text(0.01, 0.01, footnote, fontsize=7.5, color="#495057", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python bench/chart.py SUITE_RESULT.json OUT.png", file=sys.stderr)
        return 2
    data: dict[str, Any] = json.loads(Path(args[0]).read_text())
    chart = data["chart"]
    draw(
        Path(args[1]), [(g["label"], g["ratios"]) for g in chart["groups"]], chart["title"], chart["footnote"]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
