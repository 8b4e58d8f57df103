#!/usr/bin/env python3
"""Turns runs/variants/results.jsonl (scripts/compare_variants.sh) into a Markdown table and a plot.

    python3 scripts/variants_table.py [RESULTS] [PLOT_PNG]
      (defaults: runs/variants/results.jsonl, docs/images/attention-variants.png)

The plot needs matplotlib (Debian: python3-matplotlib); without it only the table is printed.
"""
import json
import sys


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "runs/variants/results.jsonl"
    plot = sys.argv[2] if len(sys.argv) > 2 else "docs/images/attention-variants.png"
    rows = [json.loads(line) for line in open(path) if line.strip()]
    names = list(dict.fromkeys(r["attention"] for r in rows))
    by = {(r["attention"], r["drop"]): r["result"] for r in rows}
    print("| design | params | val acc dense | val acc RLT | GFLOP/clip dense | GFLOP/clip RLT "
          "| step ms dense | step ms RLT | peak MB dense | peak MB RLT |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        d, r = by[(n, "dense")], by[(n, "rlt")]
        print(f"| `{n}` | {d['parameters']:,} | {d['val_acc']:.3f} | {r['val_acc']:.3f} "
              f"| {d['forward_gflop_per_clip']:.4f} | {r['forward_gflop_per_clip']:.4f} "
              f"| {d['step_ms']:.0f} | {r['step_ms']:.0f} | {d['peak_memory_mb']:.0f} | {r['peak_memory_mb']:.0f} |")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)", file=sys.stderr)
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = range(len(names))
    w = 0.4
    for i, drop in enumerate(("dense", "rlt")):
        ax1.bar([k + (i - 0.5) * w for k in x], [by[(n, drop)]["val_acc"] for n in names], w, label=drop)
        ax2.bar([k + (i - 0.5) * w for k in x], [by[(n, drop)]["step_ms"] for n in names], w, label=drop)
    for ax, title in ((ax1, "validation accuracy"), (ax2, "training step (ms, batch 32)")):
        ax.set_xticks(list(x))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_title(title)
        ax.legend()
    fig.suptitle("Attention designs on the built-in dataset, same budget (tiny preset)")
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    print(f"(plot written to {plot})", file=sys.stderr)


if __name__ == "__main__":
    main()
