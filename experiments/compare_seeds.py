#!/usr/bin/env python3
"""Old against new over seeds: reads `steerer simulate --seed S` outputs
(one file per scenario and seed, named <scenario>_<seed>.txt) from two
folders and prints, per scenario, each policy's mean +- sample standard
deviation over the seeds, old and new rows side by side.

    python3 experiments/compare_seeds.py OLD_DIR NEW_DIR scenario...
"""
import statistics
import sys
from pathlib import Path

FIGURES = [
    ("mean retries", 2),
    ("mean time s", 5),
    ("p99 time s", 7),
    ("goodput Mbit/s", 12),
    ("gave up", 13),
    ("sends into blackholes", 15),
    ("blackholes learned", 16),
    ("median time to learn s", 17),
]


def rows(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 18 and cells[0] in ("uniform", "ecmp", "steerer", "oracle"):
            out[cells[0]] = cells
    return out


def value(cell):
    if cell in ("-", ""):
        return None
    return float(cell.rstrip("%"))


def fmt(x):
    if abs(x) >= 100:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.3f}"
    return f"{x:.4f}"


def summary(values):
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{fmt(statistics.mean(v))} +- {fmt(sd)}"


def main():
    old_dir, new_dir, scenarios = sys.argv[1], sys.argv[2], sys.argv[3:]
    for sc in scenarios:
        runs = {}
        for label, d in (("old", old_dir), ("new", new_dir)):
            files = sorted(Path(d).glob(f"{sc}_*.txt"))
            runs[label] = [rows(f) for f in files]
        seeds = len(runs["new"])
        print(f"\n#### {sc} ({seeds} seeds; mean +- sd)\n")
        print("| policy | " + " | ".join(f for f, _ in FIGURES) + " |")
        print("|---|" + "---:|" * len(FIGURES))
        for policy in ("uniform", "ecmp", "oracle", "steerer"):
            for label in (("old", "new") if policy == "steerer" else ("new",)):
                cells = []
                for _, col in FIGURES:
                    cells.append(summary([value(r[policy][col]) for r in runs[label] if policy in r]))
                name = f"steerer {label}" if policy == "steerer" else policy
                print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
