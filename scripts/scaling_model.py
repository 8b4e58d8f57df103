#!/usr/bin/env python3
"""The time data parallelism adds to a training step, from the bytes all-reduced per step and the links.

A ring all-reduce of S bytes over N ranks sends and receives 2 (N - 1) / N * S bytes per rank, in 2 (N - 1)
messages one after the other, so on a ring whose slowest link carries B bytes/s per rank:

    t(N) = 2 (N - 1) / N * S / B + 2 (N - 1) * alpha        (alpha: the latency of one message)

S is 4 bytes per parameter (float32 gradients; glance's `parallel.allreduce_bytes_per_step`). Whether t is paid
depends on overlap: the buckets are summed while backward computes the rest, so a step slows down by about
max(0, t - backward time of all buckets but the last) + t(last bucket).

    python3 scripts/scaling_model.py                 # the table of docs/13
    python3 scripts/scaling_model.py --params 86e6   # another model
"""
import argparse

# Assumed: the ring's bandwidth B is that of the narrowest cut it crosses, in what NCCL reaches on it ("bus
# bandwidth", below the data-sheet peak). A ring over several nodes crosses each node boundary once per channel;
# NCCL spreads its channels over the node's network cards, so B is about cards x 45 GB/s (NDR 400 Gb/s = 50 GB/s
# peak) until NVLink inside the node is the narrower one; 200 GB/s for 8 cards is a conservative figure for it.
LINKS = [
    # name, ranks, B (bytes/s), alpha (s)
    ("8 GPUs in one node, NVLink 4 (H100 SXM)", 8, 350e9, 10e-6),
    ("8 GPUs in one node, PCIe 4.0 x16, no NVLink", 8, 20e9, 10e-6),
    ("2 nodes x 8 GPUs, 8 InfiniBand NDR cards per node", 16, 200e9, 20e-6),
    ("2 nodes x 8 GPUs, 1 InfiniBand NDR card per node", 16, 45e9, 20e-6),
    ("8 nodes x 8 GPUs, 8 InfiniBand NDR cards per node", 64, 200e9, 20e-6),
]

MODELS = [  # name, parameters (as glance train prints them for each preset)
    ("tiny", 175_752),
    ("small", 2_078_024),
    ("base (ViT-B/16)", 86_248_712),
]


def ring_seconds(n, size_bytes, bandwidth, alpha):
    return 2 * (n - 1) / n * size_bytes / bandwidth + 2 * (n - 1) * alpha


# The step of ViT-B (base) on one H100 that the sum competes with, assumed: 8 clips per GPU, RLT keeping half of
# the 1568 tokens of each (6272 tokens), forward and backward 3 x 2 x parameters x tokens FLOPs (the attention
# scores add about 10% at this length, left out), at 300 TFLOP/s (bf16 on tensor cores at about a third of the
# H100 SXM's 989 dense peak). Backward is 2/3 of it: the time buckets have to overlap with.
STEP_TOKENS = 8 * 1568 // 2
STEP_FLOPS_PER_S = 300e12
LAST_BUCKET_BYTES = 4e6  # --bucket-mb 4


def efficiency_table(params):
    compute = 3 * 2 * params * STEP_TOKENS / STEP_FLOPS_PER_S
    backward = 2 / 3 * compute
    print(f"\nbase: {1e3 * compute:.1f} ms of compute per step (assumed, see STEP_*); scaling efficiency = compute / step")
    print("| link | ranks | all-reduce | no overlap | all-reduce during backward |")
    print("| --- | --- | --- | --- | --- |")
    for name, n, bw, alpha in LINKS:
        t = ring_seconds(n, 4 * params, bw, alpha)
        # The bucket holding the first parameters is ready only when backward ends: its sum is never hidden.
        exposed = max(0.0, t - backward) + ring_seconds(n, min(LAST_BUCKET_BYTES, 4 * params), bw, alpha)
        print(f"| {name} | {n} | {1e3 * t:.2f} ms | {compute / (compute + t):.0%} | {compute / (compute + exposed):.0%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=float, action="append", help="a model's parameter count (repeatable)")
    args = parser.parse_args()
    models = [(f"{p:.3g} parameters", p) for p in args.params] if args.params else MODELS
    print("| link | ranks | " + " | ".join(f"{name}: {4 * p / 1e6:.1f} MB" for name, p in models) + " |")
    print("| --- | --- |" + " --- |" * len(models))
    for name, n, bw, alpha in LINKS:
        cells = [f"{1e3 * ring_seconds(n, 4 * p, bw, alpha):.2f} ms" for _, p in models]
        print(f"| {name} | {n} | " + " | ".join(cells) + " |")
    if not args.params:
        efficiency_table(MODELS[-1][1])


if __name__ == "__main__":
    main()
