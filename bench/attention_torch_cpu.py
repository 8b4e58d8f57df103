#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the CPU, on the cases of bench/bench_attention.cpp: the reference
for the CPU backend's attention (docs/09-fused-attention.md). Needs torch >= 2.0; bench/compare_cpu_torch.py
runs it in its virtual environment, alternating with glance.

    ./build/bench/bench_attention --no-reference --max-n 4096 > glance.jsonl
    python3 bench/attention_torch_cpu.py --from-glance glance.jsonl --threads 2

For every line of glance's output, the same clips (read from the case name: n{N}_d{d}_h{H} is one clip of N
tokens; ragged_... and rlt_pack_... list their clips' token counts), heads and head dim, float32 inputs from
randn, timed the way bench_attention times glance: forward without autograd, and forward + backward of
sum(out * g) with q, k, v requiring gradients; the median of --reps after one warm-up round.
A pack of several clips runs two ways and the faster counts ("impl"): per_clip, one SDPA call per clip (the
Python loop in the time), and padded, the clips padded to the longest with the padding keys masked.
One JSON line per case:
    {"bench":"attention","case":"n1568_d64_h2","kernel":"torch_sdpa","impl":"one_clip","fwd_ms":..,
     "fwdbwd_ms":..,"impls_fwdbwd_ms":{..},"torch":"2..","threads":2}
"""
import argparse
import json
import os
import re
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--from-glance", required=True, help="bench_attention's JSON lines")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    return p.parse_args()


args = parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def clips_of(case):
    """Token counts per clip from bench_attention's case name."""
    m = re.fullmatch(r"n(\d+)_d\d+_h\d+", case)
    if m:
        return [int(m.group(1))]
    m = re.fullmatch(r"(?:ragged|rlt_pack)((?:_\d+)+)_d\d+", case)
    if m:
        return [int(c) for c in m.group(1).strip("_").split("_")]
    sys.exit(f"attention_torch_cpu.py: cannot read the clips of case '{case}'")


def per_clip(q, k, v, counts):
    """q, k, v [H, N, d] packed -> [H, N, d], one SDPA call per clip."""
    outs, at = [], 0
    for c in counts:
        outs.append(F.scaled_dot_product_attention(q[None, :, at : at + c], k[None, :, at : at + c],
                                                   v[None, :, at : at + c])[0])
        at += c
    return torch.cat(outs, 1)


def padded(q, k, v, counts):
    """The clips padded to the longest, padding keys masked: [B, H, L, d], then packed back to [H, N, d]."""
    H, _, d = q.shape
    B, L = len(counts), max(counts)
    idx = torch.cat([torch.arange(c) + i * L for i, c in enumerate(counts)])  # packed row -> padded row
    def pad(x):
        out = x.new_zeros(H, B * L, d)
        out = out.index_copy(1, idx, x)
        return out.view(H, B, L, d).transpose(0, 1)
    valid = torch.arange(L)[None, :] < torch.tensor(counts)[:, None]  # [B, L]
    o = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=valid[:, None, None, :])
    return o.transpose(0, 1).reshape(H, B * L, d).index_select(1, idx)


def one_clip(q, k, v, counts):
    return F.scaled_dot_product_attention(q[None], k[None], v[None])[0]


def time_impl(fn, counts, heads, d):
    n = sum(counts)
    g = torch.Generator().manual_seed(1)
    q, k, v, grad = (torch.randn(heads, n, d, generator=g) for _ in range(4))
    fwd, both = [], []
    for r in range(args.reps + 1):  # the first round warms up
        with torch.no_grad():
            t0 = time.perf_counter()
            fn(q, k, v, counts)
            if r:
                fwd.append(time.perf_counter() - t0)
        for x in (q, k, v):
            x.requires_grad_(True)
        t0 = time.perf_counter()
        (fn(q, k, v, counts) * grad).sum().backward()
        if r:
            both.append(time.perf_counter() - t0)
        q, k, v = (x.detach() for x in (q, k, v))
    return 1e3 * statistics.median(fwd), 1e3 * statistics.median(both)


def main():
    torch.set_num_threads(args.threads)
    with open(args.from_glance) as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    seen = set()
    for row in rows:
        if row.get("bench") != "attention" or row["case"] in seen:
            continue
        seen.add(row["case"])
        counts, heads, d = clips_of(row["case"]), row["heads"], row["d"]
        impls = {"one_clip": one_clip} if len(counts) == 1 else {"per_clip": per_clip, "padded": padded}
        times = {name: time_impl(fn, counts, heads, d) for name, fn in impls.items()}
        best = min(times, key=lambda name: times[name][1])
        print(json.dumps({"bench": "attention", "case": row["case"], "kernel": "torch_sdpa", "impl": best,
                          "tokens": sum(counts), "d": d, "heads": heads, "fwd_ms": round(times[best][0], 3),
                          "fwdbwd_ms": round(times[best][1], 3),
                          "impls_fwdbwd_ms": {k: round(v[1], 3) for k, v in times.items()},
                          "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
