#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the cases of bench/bench_attention_cuda.cpp: the reference
points for the CUDA rungs of the attention ladder (docs/09-fused-attention.md).

    ./build/bench/bench_attention_cuda > glance.jsonl        (the fused kernels)
    python3 bench/attention_torch.py --from-glance glance.jsonl > torch.jsonl     (SDPA on the same cases)
  options: --reps 20, --max-n 32768, --dtypes fp32,bf16 (in that order), --rlt-counts a,b,... (instead of
  --from-glance; the built-in default is the 8 counts below, 4 times), --skip-math-above 16384.

One JSON line per (case, dtype, variant, backend), in bench_attention_cuda's format:
    {"bench":"attention","case":"n4096_d64","kernel":"torch_sdpa","variant":"dense","backend":"efficient",
     "backend_ran":"efficient","cuda_kernels":[...],"dtype":"fp32","clips":4,"tokens":16384,"d":64,"heads":32,
     "fwd_ms":..,"fwd_tflops":..,"fwdbwd_ms":..,"fwdbwd_tflops":..,"peak_mb":..,"device":"..","torch":".."}
or, when a backend cannot run the case, the same keys with "skipped": "<the reason PyTorch gave>".

Backends, each forced alone with torch.nn.attention.sdpa_kernel: math (unfused, materialises the L x L
scores), efficient (xformers/CUTLASS memory-efficient: the one fused fp32 path), flash (FlashAttention-2:
fp16/bf16 only, no masks), cudnn (fp16/bf16), and "default" (PyTorch's own choice). "backend_ran" is read
from the CUDA kernel names a profiled forward call launched (cuda_kernels lists them), so it says what
actually ran, not what was asked for.

FLOP convention (FlashAttention's, the same as bench_attention_cuda): forward = 4 * H * d * sum_i L_i^2,
backward = 2.5 x forward, forward+backward = 3.5 x forward; only useful work counts (padding does not).
peak_mb: torch.cuda.max_memory_allocated during one forward+backward, inputs and gradients included.

Cases:
  n{N}_d{d}   dense: 16384 / N clips of N tokens (one clip from N = 16384 on), H = 2048 / d, d = 64, 128;
  ragged      clips of 1, 7, 64, 197, 1568 tokens, H = 12, d = 64;
  rlt_pack    32 clips with RLT's token counts (8 clips' counts repeated 4 times), H = 12, d = 64.
The two packed cases run three ways, since SDPA has no fused fp32 varlen path:
  padded      every clip padded to the longest, padding keys masked (a boolean attn_mask);
  per_clip    one SDPA call per clip (no mask, no padding; the Python loop is in the time);
  njt         nested jagged tensors (torch.jagged), which SDPA routes to its varlen kernels.
"""
import argparse
import json
import math
import statistics
import sys
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {
    "math": [SDPBackend.MATH],
    "efficient": [SDPBackend.EFFICIENT_ATTENTION],
    "flash": [SDPBackend.FLASH_ATTENTION],
    "cudnn": [SDPBackend.CUDNN_ATTENTION],
    "default": None,  # PyTorch's own choice
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# The token counts RLT gives bench_attention_cuda's 8 built-in clips (16 x 224 x 224, tubelets 2 x 16 x 16,
# tau 0.1), repeated 4 times: what its rlt_pack line lists under "counts" (--from-glance reads them there).
DEFAULT_RLT_COUNTS = [315, 298, 298, 290, 285, 268, 271, 308] * 4


def backend_of(kernel_names):
    """Which SDPA backend a list of CUDA kernel names belongs to."""
    text = " ".join(kernel_names).lower()
    if "cudnn" in text or "fort_native_sdpa" in text:
        return "cudnn"
    if "flash" in text:
        return "flash"
    if "fmha" in text or "cutlassf" in text or "mem_eff" in text:
        return "efficient"
    return "math"


def profiled_kernels(fn):
    """The distinct CUDA kernel names one call of fn launches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    names = []
    for evt in prof.events():
        if evt.device_type == torch.autograd.DeviceType.CUDA and evt.name not in names:
            names.append(evt.name)
    return names


def median_ms(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def make_inputs(variant, counts, heads, d, dtype, seed=0):
    """(pieces, leaves): pieces are (q, k, v, dout, attn_mask) tuples laid out for the variant, one per
    SDPA call; leaves are the tensors the gradients are taken for (q, k, v themselves, or for nested
    tensors the packed [total, H, d] values they are views of)."""
    gen = torch.Generator(device="cuda").manual_seed(seed)
    dev = "cuda"

    def rand(*shape, grad=False):
        return torch.randn(*shape, device=dev, dtype=dtype, generator=gen).requires_grad_(grad)

    if variant == "dense":  # equal lengths: [B, H, N, d]
        B, N = len(counts), counts[0]
        q, k, v = (rand(B, heads, N, d, grad=True) for _ in range(3))
        return [(q, k, v, rand(B, heads, N, d), None)], [q, k, v]
    if variant == "padded":
        B, L = len(counts), max(counts)
        q, k, v = (rand(B, heads, L, d, grad=True) for _ in range(3))
        keep = torch.arange(L, device=dev)[None, :] < torch.tensor(counts, device=dev)[:, None]  # [B, L]
        mask = keep[:, None, None, :]  # [B, 1, 1, L]: True = may attend (padding keys are masked)
        return [(q, k, v, rand(B, heads, L, d), mask)], [q, k, v]
    if variant == "per_clip":
        pieces = [(rand(1, heads, n, d, grad=True), rand(1, heads, n, d, grad=True), rand(1, heads, n, d, grad=True),
                   rand(1, heads, n, d), None) for n in counts]
        return pieces, [t for p in pieces for t in p[:3]]
    if variant == "njt":
        # One offsets tensor for all four, so they share one ragged structure (cu_seqlens, in int64).
        offsets = torch.tensor([0] + [sum(counts[:i + 1]) for i in range(len(counts))], device=dev)
        total = sum(counts)
        values = [rand(total, heads, d, grad=(i < 3)) for i in range(4)]
        nested = [torch.nested.nested_tensor_from_jagged(x, offsets).transpose(1, 2) for x in values]  # [B, H, j, d]
        return [tuple(nested) + (None,)], values[:3]
    raise ValueError(variant)


def run(case, variant, counts, heads, d, dtype_name, backend, reps, device):
    dtype = DTYPES[dtype_name]
    sum_sq = sum(n * n for n in counts)
    fwd_flop = 4.0 * heads * d * sum_sq
    line = {"bench": "attention", "case": case, "kernel": "torch_sdpa", "variant": variant, "backend": backend,
            "dtype": dtype_name, "clips": len(counts), "tokens": sum(counts), "max_len": max(counts), "d": d,
            "heads": heads, "flops": "fwd=4*H*d*sum(L^2), bwd=2.5*fwd", "device": device,
            "torch": torch.__version__}
    if variant == "padded":
        line["padded_work_ratio"] = round(len(counts) * max(counts) ** 2 / sum_sq, 3)
    scale = 1.0 / math.sqrt(d)
    caught = warnings.catch_warnings(record=True)  # SDPA says why a backend cannot run in UserWarnings
    seen = caught.__enter__()
    warnings.simplefilter("always")
    try:
        pieces, leaves = make_inputs(variant, counts, heads, d, dtype)

        def forward():
            return [F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale) for q, k, v, _, m in pieces]

        def forward_backward():
            outs = forward()
            torch.autograd.grad(outs, leaves, [g for _, _, _, g, _ in pieces])

        ctx = sdpa_kernel(BACKENDS[backend]) if BACKENDS[backend] else None
        if ctx:
            ctx.__enter__()
        try:
            with torch.no_grad():
                kernels = profiled_kernels(forward)
            line["cuda_kernels"] = kernels[:8]
            line["backend_ran"] = backend_of(kernels)
            with torch.no_grad():
                fwd_ms = median_ms(forward, reps)
            line["fwd_ms"] = round(fwd_ms, 4)
            line["fwd_tflops"] = round(fwd_flop / (fwd_ms * 1e-3) / 1e12, 3)
            try:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                forward_backward()
                torch.cuda.synchronize()
                line["peak_mb"] = round(torch.cuda.max_memory_allocated() / 1e6, 1)
                both_ms = median_ms(forward_backward, reps)
                line["fwdbwd_ms"] = round(both_ms, 4)
                line["fwdbwd_tflops"] = round(3.5 * fwd_flop / (both_ms * 1e-3) / 1e12, 3)
            except (RuntimeError, NotImplementedError) as e:  # e.g. no backward for this layout
                line["fwdbwd_skipped"] = first_line(e)
        finally:
            if ctx:
                ctx.__exit__(None, None, None)
    except torch.cuda.OutOfMemoryError as e:
        line["skipped"] = "out of memory: " + first_line(e)
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as e:
        line["skipped"] = first_line(e)
    finally:
        pieces = leaves = None
        torch.cuda.empty_cache()
        caught.__exit__(None, None, None)
    reasons = [first_line(w.message) for w in seen if "sdp" in str(w.message).lower() or "kernel" in str(w.message).lower()]
    if reasons and ("skipped" in line or "fwdbwd_skipped" in line):
        line["reasons"] = reasons[:6]
    print(json.dumps(line), flush=True)


def first_line(e):
    text = str(e).strip().replace("\n", " ")
    return text[:300]


def rlt_counts(args):
    if args.rlt_counts:
        counts = [int(c) for c in args.rlt_counts.split(",")]
        return counts * 4 if len(counts) == 8 else counts
    if args.from_glance:
        with open(args.from_glance) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                row = json.loads(line)
                if row.get("case", "").startswith("rlt_pack") and "counts" in row:
                    return row["counts"]
    return DEFAULT_RLT_COUNTS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--max-n", type=int, default=32768)
    ap.add_argument("--rlt-counts", type=str, default="",
                    help="the rlt_pack clip lengths, comma-separated (8 values are repeated 4 times)")
    ap.add_argument("--from-glance", type=str, default="",
                    help="bench_attention_cuda's output: take the rlt_pack lengths from its \"counts\"")
    ap.add_argument("--skip-math-above", type=int, default=16384,
                    help="no math backend above this many tokens per clip (it materialises L x L scores)")
    ap.add_argument("--dtypes", type=str, default="fp32,bf16",
                    help="which input dtypes, comma-separated, in this order (fp32, bf16)")
    args = ap.parse_args()
    dtypes = [t for t in args.dtypes.split(",") if t]
    for t in dtypes:
        if t not in ("fp32", "bf16"):
            ap.error(f"--dtypes takes fp32 and bf16, not {t!r}")
    if not torch.cuda.is_available():
        print("attention_torch.py: no CUDA device", file=sys.stderr)
        return 1
    device = torch.cuda.get_device_name()
    print(json.dumps({"bench": "attention_env", "device": device, "torch": torch.__version__,
                      "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                      "flash_sdp": torch.backends.cuda.flash_sdp_enabled(),
                      "mem_efficient_sdp": torch.backends.cuda.mem_efficient_sdp_enabled(),
                      "cudnn_sdp": torch.backends.cuda.cudnn_sdp_enabled(),
                      "math_sdp": torch.backends.cuda.math_sdp_enabled()}), flush=True)
    for dtype_name in dtypes:
        # The packs first (as bench_attention_cuda): a run cut short by a time limit still has the
        # variable-length cases.
        packs = [("ragged_1_7_64_197_1568_d64", [1, 7, 64, 197, 1568])]
        rlt = rlt_counts(args)
        if rlt:
            packs.append(("rlt_pack_32_d64", rlt))
        else:
            print("attention_torch.py: no --rlt-counts or --from-glance, the rlt_pack case is left out",
                  file=sys.stderr)
        for case, counts in packs:
            for variant in ("padded", "per_clip", "njt"):
                for backend in BACKENDS:
                    run(case, variant, counts, 12, 64, dtype_name, backend, args.reps, device)
        for d in (64, 128):
            heads = 2048 // d
            n = 512
            while n <= args.max_n:
                counts = [n] * max(1, 16384 // n)
                for backend in BACKENDS:
                    if backend == "math" and n > args.skip_math_above:
                        continue
                    reps = max(3, args.reps // 4) if n >= 16384 else args.reps
                    run(f"n{n}_d{d}", "dense", counts, heads, d, dtype_name, backend, reps, device)
                n *= 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
