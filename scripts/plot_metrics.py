#!/usr/bin/python3
"""Plots training curves from glance's JSON Lines metrics logs, one colour per run.

    /usr/bin/python3 scripts/plot_metrics.py \\
        --run rlt=runs/demo/rlt.metrics.jsonl --run dense=runs/demo/dense.metrics.jsonl \\
        --out docs/images/train-rlt-vs-dense.png [--smooth 20] [--title "RLT vs dense"]

Each log line is one JSON object with at least "step" and "loss"; "accuracy" (training), "val_acc",
"epoch", "lr" and "clips_per_s" are optional. A line lacking a key is skipped for the curve that needs it
(a line with "step" and "val_acc" only is a validation point). A line with "phase": "validation" (what
glance's examples write today, e.g. {"accuracy": 0.93, "phase": "validation"}) is a validation point at its
"step", or at the last training step before it. Blank lines are ignored; a line that is not valid JSON is
an error (with its file and line number).

The PNG has two panels against step: training loss (moving average over --smooth steps, bold, with the raw
curve faint behind it) and accuracy (training accuracy smoothed the same way, solid; validation accuracy
as markers joined by a dashed line). Needs only matplotlib (Agg backend, no display); runs with the
system Python, which has it.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def fail(msg):
    sys.exit(f"plot_metrics: error: {msg}")


def parse_run(spec):
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {spec!r}")
    return name, path


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # excludes NaN


def load(name, path):
    """Returns {key: ([steps], [values])} for loss, accuracy and val_acc."""
    if not os.path.isfile(path):
        fail(f"run {name!r}: no such file: {path}")
    curves = {"loss": ([], []), "accuracy": ([], []), "val_acc": ([], [])}
    last_step = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{path}:{lineno}: not valid JSON ({e.msg})")
            if not isinstance(rec, dict):
                continue
            if rec.get("phase") == "validation":
                # glance's examples log validation as {"accuracy": a, "phase": "validation"}, maybe without
                # a step: plot it as a validation point at its step, or at the last training step seen.
                step = rec.get("step", last_step)
                acc = rec.get("val_acc", rec.get("accuracy"))
                if is_number(step) and is_number(acc):
                    curves["val_acc"][0].append(step)
                    curves["val_acc"][1].append(float(acc))
                continue
            if not is_number(rec.get("step")):
                continue
            last_step = rec["step"]
            for key, (steps, values) in curves.items():
                if is_number(rec.get(key)):
                    steps.append(rec["step"])
                    values.append(float(rec[key]))
    if not curves["loss"][0] and not curves["accuracy"][0] and not curves["val_acc"][0]:
        fail(f"run {name!r}: {path} has no usable lines (need JSON objects with \"step\" and \"loss\", "
             f"\"accuracy\" or \"val_acc\")")
    for key, (steps, values) in curves.items():  # sort by step (logs appended after a resume)
        if steps and any(b < a for a, b in zip(steps, steps[1:])):
            pairs = sorted(zip(steps, values), key=lambda p: p[0])
            curves[key] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return curves


def moving_average(values, n):
    """Trailing mean over the last n values (fewer at the start), same length as values."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def main():
    p = argparse.ArgumentParser(description="Plot loss and accuracy curves from JSONL metrics logs.")
    p.add_argument("--run", action="append", type=parse_run, required=True, metavar="NAME=PATH",
                   help="a run to plot (repeatable)")
    p.add_argument("--out", required=True, help="output PNG path (folders are created)")
    p.add_argument("--smooth", type=int, default=20, help="moving-average window in steps (1 = none)")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--dpi", type=int, default=120)
    args = p.parse_args()
    if args.smooth < 1:
        fail("--smooth must be at least 1")
    names = [n for n, _ in args.run]
    if len(set(names)) != len(names):
        fail(f"run names must be distinct: {names}")

    runs = [(name, load(name, path)) for name, path in args.run]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    any_acc = False
    for i, (name, c) in enumerate(runs):
        col = colours[i % len(colours)]
        steps, loss = c["loss"]
        if steps:
            ax_loss.plot(steps, loss, color=col, alpha=0.25, linewidth=0.8)
            ax_loss.plot(steps, moving_average(loss, args.smooth), color=col, linewidth=1.8, label=name)
        steps, acc = c["accuracy"]
        if steps:
            any_acc = True
            ax_acc.plot(steps, moving_average(acc, args.smooth), color=col, linewidth=1.8, label=f"{name} train")
        steps, val = c["val_acc"]
        if steps:
            any_acc = True
            ax_acc.plot(steps, val, color=col, linestyle="--", marker="o", markersize=4, linewidth=1.0,
                        label=f"{name} val")

    smooth = f" (moving average of {args.smooth})" if args.smooth > 1 else ""
    ax_loss.set_title(f"Training loss{smooth}")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_loss.grid(True, alpha=0.3)
    if ax_loss.lines:
        ax_loss.legend()
    ax_acc.set_title(f"Accuracy: train{smooth}, validation")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.grid(True, alpha=0.3)
    if any_acc:
        ax_acc.legend()
    else:
        ax_acc.text(0.5, 0.5, "no accuracy in these logs", ha="center", va="center", transform=ax_acc.transAxes)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    counts = ", ".join(f"{n}: {len(c['loss'][0])} loss, {len(c['val_acc'][0])} val points" for n, c in runs)
    print(f"wrote {args.out} ({counts})")


if __name__ == "__main__":
    main()
