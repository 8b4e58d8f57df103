#!/usr/bin/env python3
"""glance against PyTorch 2.x on the CPU, the programs alternating in one run so that both see the same load.

    python3 bench/compare_cpu_torch.py --build build [--threads 2] [--rounds 3] [--steps 10]
                                       [--cases d192,tiny,tiny_rlt,vitb_forward,attention]

The reference is PyTorch 2.x from PyPI, in a virtual environment this script creates under the build folder
(BUILD/venv-torch, `pip install torch numpy` on first use; TORCH_PYTHON=/path/to/python uses another python that
has torch >= 2 instead). Debian's python3-torch (1.13, /usr/bin/python3), where installed, is timed as a
second line in its eager explicit-attention mode.

Cases (each round runs glance, then PyTorch 2.x in its three modes interleaved step by step in one process, then
Debian's PyTorch; bench/train_step_torch.py documents the PyTorch model and modes):
  d192          bench_train_step's default: dim 192, depth 4, 3 heads, 8 clips x 392 tokens, dense, AdamW
  tiny          the demo's model (preset tiny: dim 64, depth 3, 4 heads), batch 32 x 128 tokens, dense
  tiny_rlt      the same on the synthetic clips tokenized by RLT; PyTorch gets glance's token counts and runs
                the pack both as a padded batch with a key mask and one unmasked call per clip, per mode, and
                the faster of the two counts
  vitb_forward  ViT-B/16 (dim 768, depth 12, 12 heads) forward only, one clip of 1568 tokens, no autograd
  attention     bench_attention --no-reference (the CPU backend's kernel) against bench/attention_torch_cpu.py
                (SDPA): one clip of N = 512 .. 4096 tokens, d 64 and 128, 2 heads; a ragged pack; an RLT pack
The three PyTorch modes: eager with the attention written out (matmul, softmax, matmul), eager with
scaled_dot_product_attention, and torch.compile (Inductor) of the SDPA model's forward and loss.

Output: the runs' own JSON lines as they come, then per case one summary JSON line
  {"bench":"compare_cpu_torch","case":..,"glance_ms":..,"torch_ms":{"explicit":..,"sdpa":..,"compile":..},
   "fastest_mode":..,"ratio_vs_fastest":..,"ratios":{..},"torch_1_13_ms":..,"rounds":..,"loadavg_1m":[..]}
where each figure is the median of the per-round medians and ratio = PyTorch ms / glance ms (> 1: glance is
faster); for attention, fwd and fwdbwd ratios per case.

--omp-wait-policy passive sets OMP_WAIT_POLICY=passive for every program it runs (both use GCC's OpenMP
runtime, libgomp). By default a thread that reaches a barrier first spins for a while before it sleeps: the
fastest hand-over on an idle machine, but on a host whose cores other processes keep busy the spinning thread
burns the time slice its partner needs, and a step made of many parallel regions stalls at each one (measured
on the 2-vCPU machine at load average 5: glance's tiny RLT step 284 ms by default, 33 ms passive, 111 ms on one
thread; docs/performance/2026-12-08-cpu-vs-pytorch2.md).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("d192", "tiny", "tiny_rlt", "vitb_forward", "attention")
MODES = ("explicit", "sdpa", "compile")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="the build folder (bench/ programs, the venv)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=10, help="timed steps per program and round (training cases)")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--omp-wait-policy", choices=("default", "passive"), default="default",
                   help="passive: OMP_WAIT_POLICY=passive for every program, glance and PyTorch alike (see above)")
    a = p.parse_args()
    a.cases = a.cases.split(",")
    for c in a.cases:
        if c not in CASES:
            p.error(f"--cases: unknown case '{c}' (choose from {', '.join(CASES)})")
    if a.rounds < 1 or a.steps < 1 or a.threads < 1:
        p.error("--rounds, --steps and --threads must be >= 1")
    for prog in ("bench_train_step", "bench_attention"):
        if not os.access(os.path.join(a.build, "bench", prog), os.X_OK):
            p.error(f"{os.path.join(a.build, 'bench', prog)} not found: build it first "
                    f"(cmake --build {a.build} --target {prog})")
    return a


def torch_version(python):
    try:
        out = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                             text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def torch2_python(build):
    """A python with torch >= 2: TORCH_PYTHON, else BUILD/venv-torch (created and filled on first use)."""
    python = os.environ.get("TORCH_PYTHON")
    if not python:
        venv = os.path.join(os.path.abspath(build), "venv-torch")
        python = os.path.join(venv, "bin", "python3")
        if not os.path.exists(python):
            print(f"compare_cpu_torch: creating {venv} and installing torch, numpy from PyPI", file=sys.stderr)
            subprocess.check_call([sys.executable, "-m", "venv", venv])
            subprocess.check_call([python, "-m", "pip", "install", "-q", "torch", "numpy"])
    version = torch_version(python)
    if not version or int(version.split(".")[0]) < 2:
        sys.exit(f"compare_cpu_torch: {python} has no torch >= 2 (found: {version})")
    return python


def run_json(cmd, env):
    """Runs cmd and returns its JSON lines (stderr passes through only on failure)."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        sys.exit(f"compare_cpu_torch: {' '.join(cmd)} failed with status {out.returncode}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def loadavg():
    return round(os.getloadavg()[0], 2)


def glance_args(case):
    return {"d192": [], "tiny": ["--preset", "tiny", "--batch", "32"],
            "tiny_rlt": ["--preset", "tiny", "--batch", "32", "--policy", "rlt"],
            "vitb_forward": ["--preset", "base", "--batch", "1", "--forward-only"]}[case]


def torch_args(case, glance_row):
    base = {"d192": [], "tiny": ["--preset", "tiny", "--batch", "32"],
            "tiny_rlt": ["--preset", "tiny", "--batch", "32", "--counts", ",".join(map(str, glance_row.get("counts", [])))],
            "vitb_forward": ["--preset", "base", "--batch", "1", "--forward-only"]}[case]
    return base


def train_case(case, a, py2, py1, env):
    steps = ["--steps", str(min(a.steps, 3) if case == "vitb_forward" else a.steps)]
    warmup = ["--warmup", "1"] if case == "vitb_forward" else []
    modes = list(MODES) + ([m + "_per_clip" for m in MODES] if case == "tiny_rlt" else [])
    g_ms, t_ms, old_ms, loads = [], {m: [] for m in MODES}, [], []
    for _ in range(a.rounds):
        loads.append(loadavg())
        g = run_json([os.path.join(a.build, "bench", "bench_train_step"), "--threads", str(a.threads)] + steps + warmup +
                     glance_args(case), env)[-1]
        g_ms.append(g["glance"])
        script = os.path.join(HERE, "train_step_torch.py")
        t = run_json([py2, script, "--threads", str(a.threads), "--attention", ",".join(modes)] + steps + warmup +
                     torch_args(case, g), env)[-1]
        variants = t.get("attention_variants_ms", {t["attention"]: t["median_ms"]})
        for m in MODES:  # a mode's figure: the faster of its masked and per-clip runs (RLT)
            t_ms[m].append(min(v for k, v in variants.items() if k == m or k == m + "_per_clip"))
        if py1:
            old = run_json([py1, script, "--threads", str(a.threads), "--attention", "explicit"] + steps + warmup +
                           torch_args(case, g), env)[-1]
            old_ms.append(old["median_ms"])
    loads.append(loadavg())
    glance = statistics.median(g_ms)
    torch_ms = {m: statistics.median(v) for m, v in t_ms.items()}
    fastest = min(torch_ms, key=torch_ms.get)
    out = {"bench": "compare_cpu_torch", "case": case, "unit": "ms", "glance_ms": glance, "torch_ms": torch_ms,
           "fastest_mode": fastest, "ratio_vs_fastest": round(torch_ms[fastest] / glance, 3),
           "ratios": {m: round(v / glance, 3) for m, v in torch_ms.items()}, "glance_rounds": g_ms,
           "torch_rounds": t_ms, "torch": t["torch"], "rounds": a.rounds, "threads": a.threads, "loadavg_1m": loads,
           "omp_wait_policy": env.get("OMP_WAIT_POLICY", "default")}
    if old_ms:
        out.update({"torch_1_13_ms": statistics.median(old_ms),
                    "ratio_vs_torch_1_13": round(statistics.median(old_ms) / glance, 3)})
    print(json.dumps(out), flush=True)
    print(f"{case}: glance {glance:.1f} ms; PyTorch {t['torch']} " +
          ", ".join(f"{m} {v:.1f} ms ({v / glance:.2f}x)" for m, v in torch_ms.items()) +
          (f"; PyTorch 1.13 explicit {statistics.median(old_ms):.1f} ms" if old_ms else "") +
          f"; load {loads}", file=sys.stderr)


def attention_case(a, py2, env):
    glance_path = os.path.join(a.build, "compare_cpu_torch_attention.jsonl")
    g_rows, t_rows, loads = {}, {}, []
    for _ in range(a.rounds):
        loads.append(loadavg())
        rows = run_json([os.path.join(a.build, "bench", "bench_attention"), "--no-reference", "--max-n", "4096",
                         "--reps", "3", "--threads", str(a.threads)], env)
        with open(glance_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        for r in rows:
            g_rows.setdefault(r["case"], []).append(r)
        for r in run_json([py2, os.path.join(HERE, "attention_torch_cpu.py"), "--from-glance", glance_path,
                           "--threads", str(a.threads)], env):
            t_rows.setdefault(r["case"], []).append(r)
    loads.append(loadavg())
    for case, gs in g_rows.items():
        ts = t_rows[case]
        med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
        out = {"bench": "compare_cpu_torch", "case": "attention_" + case, "unit": "ms",
               "glance_fwd_ms": med(gs, "fwd_ms"), "glance_fwdbwd_ms": med(gs, "fwdbwd_ms"),
               "torch_fwd_ms": med(ts, "fwd_ms"), "torch_fwdbwd_ms": med(ts, "fwdbwd_ms"), "torch_impl": ts[-1]["impl"],
               "fwd_ratio": round(med(ts, "fwd_ms") / med(gs, "fwd_ms"), 3),
               "fwdbwd_ratio": round(med(ts, "fwdbwd_ms") / med(gs, "fwdbwd_ms"), 3), "torch": ts[-1]["torch"],
               "rounds": a.rounds, "threads": a.threads, "loadavg_1m": loads,
               "omp_wait_policy": env.get("OMP_WAIT_POLICY", "default")}
        print(json.dumps(out), flush=True)
        print(f"attention {case}: fwd {out['glance_fwd_ms']:.2f} vs {out['torch_fwd_ms']:.2f} ms ({out['fwd_ratio']:.2f}x), "
              f"fwd+bwd {out['glance_fwdbwd_ms']:.2f} vs {out['torch_fwdbwd_ms']:.2f} ms ({out['fwdbwd_ratio']:.2f}x)",
              file=sys.stderr)


def main():
    a = parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    if a.omp_wait_policy == "passive":
        env["OMP_WAIT_POLICY"] = "passive"
    py2 = torch2_python(a.build)
    py1 = "/usr/bin/python3" if torch_version("/usr/bin/python3") else None
    for case in a.cases:
        if case == "attention":
            attention_case(a, py2, env)
        else:
            train_case(case, a, py2, py1, env)


if __name__ == "__main__":
    main()
