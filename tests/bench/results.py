"""Benchmark figures: printed beside their same-run reference and appended to .bench/results.json."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / ".bench" / "results.json"


@dataclass(slots=True, frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    reference: str  # what the figure is compared with, measured in the same run
    reference_value: float
    ratio: float  # value / reference_value
    goal: str = ""


def record(figure: Figure) -> None:
    print(
        f"\n{figure.name}: {figure.value:,.2f} {figure.unit}"
        f"  |  {figure.reference}: {figure.reference_value:,.2f} {figure.unit}"
        f"  |  ratio {figure.ratio:.3f}" + (f"  |  goal {figure.goal}" if figure.goal else "")
    )
    RESULTS.parent.mkdir(exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    existing = [row for row in existing if row["name"] != figure.name]
    existing.append(asdict(figure) | {"pid": os.getpid()})
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
