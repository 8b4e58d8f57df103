#!/usr/bin/python3
"""Plots bench_attention's JSON lines: fwd+bwd TFLOP/s and peak memory against N, per kernel and head dim.

    /usr/bin/python3 scripts/plot_attention.py LOG [PNG]     (default PNG: docs/images/attention-ladder-cpu.png)

LOG holds the JSON lines of bench/bench_attention (lines starting with '#' are skipped). Needs matplotlib
(Debian: python3-matplotlib). Also prints the Markdown table of docs/09.
"""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    log = sys.argv[1]
    png = sys.argv[2] if len(sys.argv) > 2 else "docs/images/attention-ladder-cpu.png"
    rows = [json.loads(l) for l in open(log) if l.strip().startswith("{")]
    print("| case | d | kernel | fwd ms | fwd+bwd ms | fwd+bwd TFLOP/s | peak MB | tiled vs reference (fwd+bwd) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r.get("fwdbwd_ratio_vs_reference")
        print(f"| {r['case']} | {r['d']} | {r['kernel']} | {r['fwd_ms']:.1f} | {r['fwdbwd_ms']:.1f} "
              f"| {r['fwdbwd_tflops']:.4f} | {r['peak_mb']:.1f} | {'' if ratio is None else f'{ratio:.2f}x'} |")
    single = [r for r in rows if r["case"].startswith("n") and r["clips"] == 1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for d, style in ((64, "-"), (128, "--")):
        for kernel, marker in (("reference", "o"), ("tiled", "s")):
            pts = sorted((r["tokens"], r) for r in single if r["d"] == d and r["kernel"] == kernel)
            if not pts:
                continue
            n = [p[0] for p in pts]
            ax1.plot(n, [p[1]["fwdbwd_tflops"] * 1000 for p in pts], style, marker=marker, label=f"{kernel}, d={d}")
            ax2.plot(n, [p[1]["peak_mb"] for p in pts], style, marker=marker, label=f"{kernel}, d={d}")
    ax1.set_title("forward+backward GFLOP/s (4Hd N^2 x 3.5)")
    ax2.set_title("peak extra memory, MB (forward+backward)")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tokens N (one clip, 2 heads)")
        ax.legend()
    ax2.set_yscale("log")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"(plot written to {png})", file=sys.stderr)


if __name__ == "__main__":
    main()
