#!/usr/bin/python3
"""PyTorch reference for glance's training-step benchmark (RLT video transformer), on the CPU or a GPU.

    /usr/bin/python3 bench/train_step_torch.py --threads 2
    python3 bench/train_step_torch.py --device cuda --attention all        (on a GPU machine)

Any python with torch: Debian's python3-torch (1.13) for /usr/bin/python3, or PyTorch 2.x from PyPI in the
virtual environment bench/compare_cpu_torch.py makes (which runs this script against glance). Per-step times
go to stderr; the LAST stdout line is one JSON object:

    {"bench": "train_step", "case": "rlt_dense_d192_depth4_h3_b8_n392", "reference_impl": "pytorch_cpu",
     "torch": ..., "threads": 2, "median_ms": ..., "min_ms": ..., "unit": "ms/step", "attention": ..., ...}

Other flags: --steps N (timed steps, default 20; --warmup N warm-up steps, default 3, run first), --attention
{explicit,mha,sdpa,compile,all,modes} or a comma-separated list, --embed {linear,conv3d,all}, --seed,
--forward-only. Several variants are timed in one process with their steps interleaved (after checking that
explicit, mha and sdpa compute the same loss from the same weights) and the fastest is reported, with every
variant's median in "attention_variants_ms" / "embed_variants_ms". `modes` is PyTorch 2.x's three ways to run
the step: explicit and sdpa eager, and compile: the sdpa model's forward and loss under torch.compile
(Inductor, which compiles the backward too; the warm-up steps pay the compilation).

GPU and the other shapes (the CPU defaults above are unchanged; these add fields to the JSON line):
  --device cuda   model, batch and optimizer on the GPU (torch.cuda.synchronize() before each step's clock
                  starts and after it ends). "sdpa" is then torch.nn.functional.scaled_dot_product_attention
                  (PyTorch picks its flash / memory-efficient / math backend). Eager mode, no torch.compile.
  --tf32          let float32 matmuls use TF32 (torch.set_float32_matmul_precision("high"), cudnn.allow_tf32);
                  without it both are held at full float32 ("highest", cudnn.allow_tf32 = False), glance's
                  default too.
  --preset base   ViT-B: dim 768, depth 12, 12 heads, 16 x 224 x 224 clips (1568 tokens per clip); the
                  default "small" is the model below. --batch N clips (default 8).
  --preset tiny   the demo's model: dim 64, depth 3, 4 heads, 16 x 32 x 32 clips, tubelets 2 x 8 x 8 (128 tokens
                  per clip); glance demo trains it with --batch 32.
  --counts a,b,.. RLT: clip b keeps only counts[b] of its tokens (the "counts" of bench_train_step's
                  --policy rlt line). PyTorch eager has no packed variable-length path for a training step,
                  so the clips are padded to the longest and the padding is masked: keys in attention (a
                  boolean mask; SDPA then runs a masked kernel), rows in the mean. Or, with the attention
                  mode "<mode>_per_clip", one unmasked attention call per clip (a Python loop) instead of
                  the mask. The tokens' tubelets are
                  given already cut (glance's are tokenized outside the timed loop too), their positions and
                  run lengths are random (values do not change the work). --embed linear only.

The model (RLT with nothing dropped, i.e. every run length is 1):
  clips [B=8, T=16, 3, 112, 112] f32 -> tubelets 2x16x16 -> grid T'=8, H'=7, W'=7 = 392 tokens per clip
  -> tubelet embedding: Linear(1536 -> 192) on each tubelet's values in (c, kt, kh, kw) order, which is
     exactly Conv3d(3, 192, kernel=stride=(2,16,16)) with the same weights (checked by the `all` modes)
  -> + fixed 1-D sinusoidal positional encoding over the 392 (t,h,w)-flattened positions (VideoMAE's
     get_sinusoid_encoding_table: angle = pos / 10000^(2*(j//2)/D), sin on even j, cos on odd j; a buffer)
  -> + learned length embedding [8, 192] looked up at (run length - 1) = 0 for every token
  -> 4 pre-LN blocks: x += proj(attn(LN(x))); x += fc2(GELU_erf(fc1(LN(x)))); LN eps 1e-6,
     qkv Linear(192, 576, bias), 3 heads of 64, softmax(q k^T / 8) v with no mask (one clip per batch row)
  -> mean over each clip's 392 tokens -> LayerNorm (fc_norm) -> head Linear(192, 10)
  loss: cross-entropy on integer labels; optimizer: torch.optim.AdamW(lr=1e-3, weight_decay=0.05), decay
  on every parameter (torch's default when given model.parameters()).
One timed step = optimizer.zero_grad(set_to_none=True) + forward + loss + backward + optimizer.step().
The same input batch is reused every step (no data loading is timed).

Tubelet embedding choice: the two forms do the same FLOPs (one 3136x1536x192 GEMM forward, one for the
weight gradient; the input needs no gradient). Linear needs an explicit im2col copy (permute+reshape,
4.8M floats) but then runs through the same BLAS GEMM as everything else; Conv3d goes through oneDNN.
Measured (`--attention all --embed all`, steps interleaved, 20 each, ms/step median / min):
linear 576 / 505 vs conv3d 683 / 532 (explicit attention), 574 / 499 vs 569 / 520 (mha), 530 / 503 vs
592 / 520 (sdpa): the minima favour linear by 15-30 ms in every pairing, so linear is the default.

Attention variants (torch 1.13 has no public F.scaled_dot_product_attention):
  explicit : qkv Linear -> [3, B, heads, N, 64]; (q * 1/8) @ k^T; softmax; @ v; merge heads; proj Linear
  mha      : nn.MultiheadAttention(192, 3, batch_first=True), need_weights=False (same parameter shapes:
             in_proj 576x192 + bias, out_proj 192x192 + bias). In training mode it takes the generic
             F.multi_head_attention_forward path; the fused "fast path" (torch._native_multi_head_attention)
             is used only for inference without autograd, so it cannot serve a training step.
  sdpa     : the private torch.nn.functional._scaled_dot_product_attention (1.13's precursor of the 2.0 API;
             on CPU it is the math composite, matmul/softmax/matmul) on the same qkv/proj Linears.
Measured with `--attention all --threads 2` (medians of 20 interleaved steps, ms/step; 2-vCPU KVM guest,
Skylake-SP, no other process running but step times still spread 500-1100 ms, so medians drift between
runs with the host's load; 1-minute load average at the start in brackets):
                                          explicit    mha    sdpa
  run 1 (1.14, interleaved with conv3d)      576.3   573.9   530.0
  run 2 (0.25)                               675.3   648.6   684.4
  run 3 (1.78, OMP_WAIT_POLICY=PASSIVE)      720.4   712.4   736.4
  run 4 (1.67)                               761.7   761.4   748.9
  The three are within noise of each other (no variant wins consistently; minima 499-570 for all), which
  is expected: all three run the same bmm/softmax/bmm kernels. explicit is the default because it needs no
  private API and spells out the computation glance implements.

Threads: --threads sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (Debian's torch calls the system
libblas.so.3, here OpenBLAS 0.3.21 pthread) before torch is imported, unless they are already set in the
environment (the JSON's "env" shows what was in effect), then torch.set_num_threads().
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

B, T, C, H, W = 8, 16, 3, 112, 112
KT, KH, KW = 2, 16, 16
TG, HG, WG = T // KT, H // KH, W // KW  # 8, 7, 7
N = TG * HG * WG                        # 392 tokens per clip
D, DEPTH, HEADS, MLP_HIDDEN = 192, 4, 3, 768
NUM_CLASSES, MAX_RUN = 10, 8
ATTENTIONS = ("explicit", "mha", "sdpa")
# PyTorch 2.x's three ways to run the step (--attention modes): eager with the explicit attention, eager with
# scaled_dot_product_attention, and the SDPA model under torch.compile (its forward and backward compiled by
# Inductor; the optimizer step stays eager). "<mode>_per_clip" (with --counts): the RLT pack's attention as one
# unmasked call per clip instead of one masked call over the padded batch.
MODES = ("explicit", "sdpa", "compile")
EMBEDS = ("linear", "conv3d")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--attention", default="explicit",
                   help="one of " + ", ".join(ATTENTIONS + ("compile", "sdpa_bf16", "all", "modes")) + ", or a "
                        "comma-separated list (also of <mode>_per_clip with --counts). all: explicit, mha, sdpa; modes: "
                        "explicit, sdpa, compile (torch >= 2). sdpa_bf16 (--device cuda, not part of all): q, k, v cast "
                        "to bf16 for SDPA, the output back to fp32, everything else fp32: glance's --precision bf16 "
                        "configuration")
    p.add_argument("--embed", choices=EMBEDS + ("all",), default="linear")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--tf32", action="store_true", help="TF32 matmuls (--device cuda)")
    p.add_argument("--preset", choices=("tiny", "small", "base"), default="small")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--forward-only", action="store_true",
                   help="time the forward pass alone under torch.no_grad() (and its loss), not the training step")
    p.add_argument("--counts", type=str, default="",
                   help="RLT: comma-separated tokens kept per clip (one per clip of the batch)")
    a = p.parse_args()
    if a.tf32 and a.device != "cuda":
        p.error("--tf32 is for --device cuda")
    if a.attention == "sdpa_bf16" and a.device != "cuda":
        p.error("--attention sdpa_bf16 is for --device cuda")
    known = ATTENTIONS + ("compile", "sdpa_bf16")
    if a.attention == "all":
        a.attention = list(ATTENTIONS)
    elif a.attention == "modes":
        a.attention = list(MODES)
    else:
        a.attention = a.attention.split(",")
    for name in a.attention:
        base = name[: -len("_per_clip")] if name.endswith("_per_clip") else name
        if base not in known or (base != name and not a.counts) or (base != name and base not in MODES):
            p.error(f"--attention: unknown mode '{name}' (choose from {', '.join(known)}; "
                    "<explicit|sdpa|compile>_per_clip with --counts)")
    if a.counts:
        a.counts = [int(c) for c in a.counts.split(",")]
        if a.embed != "linear":
            p.error("--counts works with --embed linear only")
    else:
        a.counts = None
    return a


args = parse_args()
if args.preset == "base":  # ViT-B/16 on 16 x 224 x 224 clips (glance's model_preset("base"))
    H, W, D, DEPTH, HEADS = 224, 224, 768, 12, 12
elif args.preset == "tiny":  # the demo's model (glance's model_preset("tiny")): 16 x 32 x 32, tubelets 2 x 8 x 8
    H, W, KH, KW, D, DEPTH, HEADS = 32, 32, 8, 8, 64, 3, 4
B = args.batch
HG, WG = H // KH, W // KW
N = TG * HG * WG
MLP_HIDDEN = 4 * D
if args.counts is not None:
    if len(args.counts) != B or not all(1 <= c <= N for c in args.counts):
        sys.exit(f"--counts needs {B} numbers in [1, {N}], got {args.counts}")
POLICY = "rlt" if args.counts is not None else "dense"
# The case names of bench_train_step (its RLT runs use the synthetic clips).
CASE = (f"rlt_{POLICY}_d{D}_depth{DEPTH}_h{HEADS}_b{B}_n{N}" + ("_synthetic" if POLICY == "rlt" else "") +
        ("_forward" if args.forward_only else ""))
DEVICE = args.device
# Must be set before torch (and its OpenMP / OpenBLAS pools) is loaded.
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def sinusoid_table(n_position, d):
    """VideoMAE's get_sinusoid_encoding_table, [n_position, d]."""
    pos = torch.arange(n_position, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(d, dtype=torch.float64).unsqueeze(0)
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / d)
    table = torch.empty(n_position, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


class TubeletEmbed(nn.Module):
    """[B, T, 3, H, W] -> [B, N, D]; token order (t', h', w') row-major, tubelet values (c, kt, kh, kw)."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.proj = nn.Linear(C * KT * KH * KW, D)  # weight [192, 1536], same numbers as Conv3d's [192,3,2,16,16]

    def forward(self, x):
        if self.mode == "conv3d":
            w = self.proj.weight.view(D, C, KT, KH, KW)
            y = F.conv3d(x.permute(0, 2, 1, 3, 4), w, self.proj.bias, stride=(KT, KH, KW))  # [B, D, T', H', W']
            return y.flatten(2).transpose(1, 2)
        b = x.shape[0]
        # [B, T', kt, c, H', kh, W', kw] -> [B, T', H', W', c, kt, kh, kw]
        x = x.view(b, TG, KT, C, HG, KH, WG, KW).permute(0, 1, 4, 6, 3, 2, 5, 7)
        return self.proj(x.reshape(b, N, C * KT * KH * KW))


def attention_core(kind, q, k, v, mask):
    """softmax(q k^T / sqrt(d)) v for q, k, v [B, heads, L, d]; mask None or bool [B, 1, 1, L] (True = attend)."""
    if kind == "sdpa_bf16":  # mixed precision: only the attention core in bf16 (flash / cuDNN on CUDA)
        return F.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), attn_mask=mask).float()
    if kind == "sdpa":
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        # torch 1.13's private precursor (Debian's python3-torch on the CPU)
        return F._scaled_dot_product_attention(q, k, v, mask, 0.0, False, False)[0]
    a = torch.matmul(q * (1.0 / math.sqrt(q.shape[-1])), k.transpose(-2, -1))  # [B, heads, L, L]
    if mask is not None:
        a = a.masked_fill(~mask, float("-inf"))
    return torch.matmul(a.softmax(dim=-1), v)


class Attention(nn.Module):
    def __init__(self, kind):
        super().__init__()
        # "<mode>_per_clip": one unmasked call per clip of the RLT pack; "compile" is the SDPA model compiled.
        self.per_clip = kind.endswith("_per_clip")
        kind = kind[: -len("_per_clip")] if self.per_clip else kind
        self.kind = "sdpa" if kind == "compile" else kind
        if kind == "mha":
            self.mha = nn.MultiheadAttention(D, HEADS, bias=True, batch_first=True)
        else:
            self.qkv = nn.Linear(D, 3 * D, bias=True)
            self.proj = nn.Linear(D, D)

    def forward(self, x, valid=None):
        """valid: None, or bool [B, L] (True = a real token; False = padding, never attended to)."""
        if self.kind == "mha":
            pad = None if valid is None else ~valid
            return self.mha(x, x, x, key_padding_mask=pad, need_weights=False)[0]
        b, n, _ = x.shape
        hd = D // HEADS
        qkv = self.qkv(x).view(b, n, 3, HEADS, hd).permute(2, 0, 3, 1, 4)  # [3, B, heads, N, 64]
        q, k, v = qkv[0], qkv[1], qkv[2]
        if valid is not None and self.per_clip:  # clip i's first counts[i] tokens are real (make_batch)
            outs = []
            for i, c in enumerate(args.counts):
                o_i = attention_core(self.kind, q[i : i + 1, :, :c], k[i : i + 1, :, :c], v[i : i + 1, :, :c], None)
                outs.append(F.pad(o_i, (0, 0, 0, n - c)))  # padding rows: 0 (masked out of the mean later)
            o = torch.cat(outs, 0)
        else:
            mask = None if valid is None else valid[:, None, None, :]  # [B, 1, 1, L], True = attend
            o = attention_core(self.kind, q, k, v, mask)
        return self.proj(o.transpose(1, 2).reshape(b, n, D))


class Block(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.attn = Attention(attention)
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.fc1 = nn.Linear(D, MLP_HIDDEN)
        self.fc2 = nn.Linear(MLP_HIDDEN, D)

    def forward(self, x, valid=None):
        x = x + self.attn(self.norm1(x), valid)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # approximate='none': erf GELU


class RLTDense(nn.Module):
    def __init__(self, attention, embed):
        super().__init__()
        self.patch = TubeletEmbed(embed)
        self.register_buffer("pos", sinusoid_table(N, D).unsqueeze(0), persistent=False)  # [1, N, D]
        self.length_embed = nn.Embedding(MAX_RUN, D)
        self.blocks = nn.ModuleList(Block(attention) for _ in range(DEPTH))
        self.fc_norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, NUM_CLASSES)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.length_embed.weight, std=0.02)

    def forward(self, clips, lengths):
        x = self.patch(clips) + self.pos + self.length_embed(lengths - 1)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.fc_norm(x.mean(dim=1)))

    def forward_tokens(self, tubelets, positions, lengths, valid):
        """RLT, padded: tubelets [B, L, 1536] (already cut), positions / lengths int64 [B, L] (where each
        run starts, how long it is), valid bool [B, L]. The mean pools each clip's real tokens only."""
        x = self.patch.proj(tubelets) + self.pos[0, positions] + self.length_embed(lengths - 1)
        for blk in self.blocks:
            x = blk(x, valid)
        w = valid.to(x.dtype).unsqueeze(-1)
        return self.head(self.fc_norm((x * w).sum(dim=1) / w.sum(dim=1)))


def build(attention, embed, seed):
    torch.manual_seed(seed)
    model = RLTDense(attention, embed)
    if attention == "mha":  # same numbers as the explicit model built from this seed
        torch.manual_seed(seed)
        ref = RLTDense("explicit", embed).state_dict()
        sd = {}
        for k, v in ref.items():
            k = k.replace("attn.qkv.weight", "attn.mha.in_proj_weight").replace("attn.qkv.bias", "attn.mha.in_proj_bias")
            k = k.replace("attn.proj.", "attn.mha.out_proj.")
            sd[k] = v
        model.load_state_dict(sd)
    return model.to(DEVICE)


def make_batch(seed):
    """Dense: (clips, labels, lengths). RLT (--counts): (tubelets, labels, positions, lengths, valid).
    Made on the CPU, then moved to the device once (outside the timed steps)."""
    g = torch.Generator().manual_seed(seed + 1)
    if args.counts is None:
        clips = torch.randn(B, T, C, H, W, generator=g)
        labels = torch.randint(0, NUM_CLASSES, (B,), generator=g)
        lengths = torch.ones(B, N, dtype=torch.long)  # dense: every run has length 1
        return tuple(t.to(DEVICE) for t in (clips, labels, lengths))
    L = max(args.counts)
    tubelets = torch.randn(B, L, C * KT * KH * KW, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (B,), generator=g)
    positions = torch.randint(0, N, (B, L), generator=g)
    lengths = torch.randint(1, MAX_RUN + 1, (B, L), generator=g)
    valid = torch.arange(L).unsqueeze(0) < torch.tensor(args.counts).unsqueeze(1)  # [B, L]
    return tuple(t.to(DEVICE) for t in (tubelets, labels, positions, lengths, valid))


def loss_of(model, batch):
    if args.counts is None:
        clips, labels, lengths = batch
        return F.cross_entropy(model(clips, lengths), labels)
    tubelets, labels, positions, lengths, valid = batch
    return F.cross_entropy(model.forward_tokens(tubelets, positions, lengths, valid), labels)


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def check_equivalence(seed):
    """All attention variants and both embedding forms give the same loss from the same weights."""
    batch = make_batch(seed)
    losses = {}
    with torch.no_grad():
        for a in ATTENTIONS:
            for e in (EMBEDS if args.counts is None else ("linear",)):
                losses[f"{a}/{e}"] = loss_of(build(a, e, seed), batch).item()
    ref = losses["explicit/linear"]
    print("equivalence check (initial loss): " + ", ".join(f"{k}={v:.6f}" for k, v in losses.items()),
          file=sys.stderr)
    bad = {k: v for k, v in losses.items() if abs(v - ref) > 1e-4 * max(1.0, abs(ref))}
    if bad:
        sys.exit(f"variants disagree with explicit ({ref}): {bad}")


def make_step(attention, embed, seed):
    """Returns a closure doing one training step of a fresh model; it returns the loss."""
    model = build(attention, embed, seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    batch = make_batch(seed)
    # compile: the forward and the loss through torch.compile (Inductor), which compiles their backward too; the
    # first (warm-up) steps pay the compilation.
    loss_fn = torch.compile(loss_of) if attention.startswith("compile") else loss_of

    def step():
        if args.forward_only:
            with torch.no_grad():
                return loss_fn(model, batch).item()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def run(variants, steps, warmup, seed):
    """Times `steps` steps of each (attention, embed) variant. With several variants the steps are
    interleaved (A B C A B C ...) so that load from other processes on the shared machine falls on all of
    them alike. Returns {(attention, embed): [ms per timed step]}."""
    fns = {v: make_step(v[0], v[1], seed) for v in variants}
    times = {v: [] for v in variants}
    for phase, count in (("warm-up", warmup), ("step", steps)):
        for i in range(count):
            for v, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                loss = fn()
                sync()
                ms = (time.perf_counter() - t0) * 1e3
                if phase == "step":
                    times[v].append(ms)
                print(f"[{v[0]}/{v[1]}] {phase} {i + 1}/{count}: {ms:.1f} ms loss {loss:.4f}", file=sys.stderr)
    for v, t in times.items():
        print(f"[{v[0]}/{v[1]}] median {statistics.median(t):.1f} ms, min {min(t):.1f} ms", file=sys.stderr)
    return times


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    torch.set_num_threads(args.threads)
    if DEVICE == "cuda":
        if not torch.cuda.is_available():
            sys.exit("train_step_torch.py: --device cuda but torch.cuda.is_available() is False")
        torch.set_float32_matmul_precision("high" if args.tf32 else "highest")
        torch.backends.cudnn.allow_tf32 = args.tf32
    n_params = sum(p.numel() for p in build("explicit", "linear", args.seed).parameters())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, params {n_params}, "
          f"load average {loadavg()}", file=sys.stderr)
    attentions = tuple(args.attention)
    embeds = EMBEDS if args.embed == "all" else (args.embed,)
    if len(attentions) * len(embeds) > 1:
        check_equivalence(args.seed)
    load_start = os.getloadavg()[0]
    results = run([(a, e) for a in attentions for e in embeds], args.steps, args.warmup, args.seed)
    medians = {v: statistics.median(t) for v, t in results.items()}
    best = min(medians, key=medians.get)
    out = {
        "bench": "train_step",
        "case": CASE,
        "reference_impl": "pytorch_" + DEVICE,
        "torch": torch.__version__,
        "threads": args.threads,
        "median_ms": round(medians[best], 2),
        "min_ms": round(min(results[best]), 2),
        "unit": "ms/step",
        "attention": best[0],
        "embed": best[1],
        "steps": args.steps,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")
                if k in os.environ},
        "loadavg_1m_start": round(load_start, 2),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
    if len(attentions) > 1:
        out["attention_variants_ms"] = {a: round(medians[(a, best[1])], 2) for a in attentions}
    if len(embeds) > 1:
        out["embed_variants_ms"] = {e: round(medians[(best[0], e)], 2) for e in embeds}
    if DEVICE != "cpu" or args.preset != "small" or B != 8 or args.counts is not None or args.forward_only:
        # Fields added with the GPU runs (the CPU default line stays as it was).
        out.update({"device": DEVICE, "tf32": args.tf32, "policy": POLICY, "preset": args.preset, "batch": B,
                    "tokens": sum(args.counts) if args.counts else B * N, "grid_tokens": B * N,
                    "clips_per_s": round(1e3 * B / medians[best], 1), "parameters": n_params,
                    "eager": not any(a.startswith("compile") for a in attentions), "forward_only": args.forward_only})
        if args.counts is not None:
            out.update({"counts": args.counts, "rlt_impl": "padded to the longest clip, padding masked"})
        if DEVICE == "cuda":
            out["device_name"] = torch.cuda.get_device_name()
            out["max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
