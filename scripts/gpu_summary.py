#!/usr/bin/env python3
"""The results of a GPU run (scripts/gpu_run.sh) as one markdown document for docs/performance/.

    python3 scripts/gpu_summary.py [--env env.txt] DIR_OR_FILE...

Reads every *.jsonl file in the given folders (and inside any gpu-run-*.tar.gz there, but not inside the
demo's metrics archive), or the files named, and prints one markdown document: the device, the commit, what ran correctly (test_cuda.xml,
memcheck.log, demo_cuda.json when present), the GPU targets met or not, then one table per benchmark:

  cuda_ops    glance op GB/s / cudaMemcpy d2d GB/s            (target: >= 0.7)
  cuda_gemm   ops::matmul TFLOP/s / cuBLAS TFLOP/s            (same buffers, same math mode)
  cuda_fused  unfused ms / fused ms                           (the speed-up of each fused kernel)
  train_step  PyTorch eager ms / glance ms, same case and TF32 setting (target: >= 1.0),
              and RLT vs dense (dense ms / RLT ms on the same synthetic clips)
  attention   glance's fused kernels vs the fastest PyTorch SDPA backend that ran, per case and dtype

Only figures present in the input are printed; a missing benchmark is named as missing, never guessed.
Standard library only (runs with any python3).
"""
import argparse
import io
import json
import os
import sys
import tarfile


# Files other than JSON lines that the summary reads, by base name.
TEXT_FILES = ("test_cuda.xml", "memcheck.log", "demo_cuda.json", "test_cuda.log", "demo_cuda.log")


def read_lines(paths, texts=None):
    """Every JSON object in the inputs, with the file it came from. When texts is a dict, the files named in
    TEXT_FILES are put there too (base name -> text; the last one found wins)."""
    rows = []
    if texts is None:
        texts = {}

    def take(text, source):
        for line in text.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            row["_source"] = source
            rows.append(row)

    for p in paths:
        files = []
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                files.append(os.path.join(p, name))
        else:
            files.append(p)
        for f in files:
            if f.endswith(".jsonl"):
                with open(f, encoding="utf-8", errors="replace") as fh:
                    take(fh.read(), f)
            elif os.path.basename(f) in TEXT_FILES and os.path.isfile(f):
                with open(f, encoding="utf-8", errors="replace") as fh:
                    texts[os.path.basename(f)] = fh.read()
            elif os.path.basename(f).startswith("gpu-run-") and f.endswith(".tar.gz") and os.path.isfile(f):
                with tarfile.open(f) as tar:
                    for m in tar.getmembers():
                        if not m.isfile():
                            continue
                        base = os.path.basename(m.name)
                        if base.endswith(".jsonl"):
                            take(tar.extractfile(m).read().decode("utf-8", "replace"), f + ":" + m.name)
                        elif base in TEXT_FILES:
                            texts[base] = tar.extractfile(m).read().decode("utf-8", "replace")
    return rows


def fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x == 0:
            return "0"
        a = abs(x)
        if a >= 1000:
            return f"{x:.0f}"
        if a >= 100:
            return f"{x:.1f}"
        if a >= 1:
            return f"{x:.{digits}g}" if a < 10 else f"{x:.2f}".rstrip("0").rstrip(".")
        if a >= 1e-3:
            return f"{x:.4f}".rstrip("0")
        return f"{x:.2e}"
    return str(x)


def chk(r):
    """The check column: ok / FAILED / skipped, or the error a case stopped with."""
    if r.get("error"):
        return "**ERROR**: " + str(r["error"])[:100].replace("|", "/")
    return r.get("check")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |")
    return "\n".join(out)


def env_lines(path):
    if not path or not os.path.isfile(path):
        return []
    keep = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("date:", "commit:", "source hash:", "host:", "binaries:")):
            keep.append(line)
        if line.startswith("--- nvidia-smi --query-gpu") and i + 2 < len(lines):
            keep.append("nvidia-smi: " + lines[i + 1])
            keep.append("            " + lines[i + 2])
        if line.startswith("--- nvcc"):
            keep.extend("nvcc: " + l.strip() for l in lines[i + 1:i + 3] if "release" in l)
        if line.startswith(("--- cmake", "--- python", "--- compute-sanitizer")):
            keep.append(line[4:])
    return keep


def gpu_train_lines(rows):
    """The GPU training-step lines: (glance's, PyTorch's)."""
    t = [r for r in rows if r.get("bench") == "train_step"]
    glance = [r for r in t if "glance" in r and str(r.get("device", "cpu")).startswith("cuda")]
    torch = [r for r in t if r.get("reference_impl") == "pytorch_cuda"]
    return glance, torch


def train_mode(r):
    """What a training-step comparison holds fixed besides the case: the matmul mode and the attention precision."""
    return bool(r.get("tf32")), "bf16" in str(r.get("attention"))


def train_key(r):
    """Runs compare within one case, one matmul mode and one attention precision (bf16 or not)."""
    return (r.get("case"),) + train_mode(r)


def section_correctness(texts, out):
    """test_cuda's gtest XML (counts, and each failure's first line), memcheck's verdict, the GPU demo's result."""
    out.append("## Correctness on the GPU\n")
    xml_text = texts.get("test_cuda.xml")
    if xml_text:
        import xml.etree.ElementTree as ET
        try:
            root = ET.fromstring(xml_text)
            cases = root.iter("testcase")
            failed, skipped, ran = [], 0, 0
            for c in cases:
                ran += 1
                if c.find("failure") is not None:
                    msg = (c.find("failure").get("message") or "").strip().splitlines()
                    failed.append(f"{c.get('classname')}.{c.get('name')}: {msg[0][:160] if msg else ''}")
                elif c.get("result") == "skipped" or c.find("skipped") is not None:
                    skipped += 1
            out.append(f"test_cuda: **{ran - len(failed) - skipped} passed, {len(failed)} failed**, {skipped} skipped "
                       f"(of {ran}; {root.get('time')} s).\n")
            for f in failed:
                out.append(f"- FAILED {f.replace('|', '/')}")
            if failed:
                out.append("")
        except ET.ParseError as e:
            out.append(f"test_cuda.xml does not parse ({e}): test_cuda stopped before writing it (crash or time-out; "
                       "see test_cuda.log).\n")
    elif "test_cuda.log" in texts:
        log = texts["test_cuda.log"].splitlines()
        ran = [l for l in log if l.startswith("[ RUN      ]")]
        done = {l.split("]", 1)[1].split("(")[0].strip() for l in log if l.startswith(("[       OK ]", "[  FAILED  ]", "[  SKIPPED ]"))}
        running = [l.split("]", 1)[1].strip() for l in ran if l.split("]", 1)[1].strip() not in done]
        failed = sorted({l.split("]", 1)[1].split("(")[0].strip() for l in log if l.startswith("[  FAILED  ]")})
        out.append(f"test_cuda.xml missing: test_cuda stopped before writing it (crash or time-out) after starting "
                   f"{len(ran)} tests, {len(failed)} failed before that" +
                   (f"; it stopped in **{running[-1]}**" if running else "") + ".\n")
        for f in failed:
            out.append(f"- FAILED {f}")
        out.append("\nLast lines of test_cuda.log:\n")
        out.append("```\n" + "\n".join(log[-8:]) + "\n```\n")
    else:
        out.append("test_cuda did not run in these calls.\n")
    mem = texts.get("memcheck.log")
    if mem:
        summary = [l for l in mem.splitlines() if "ERROR SUMMARY" in l]
        if summary:
            out.append(f"compute-sanitizer memcheck (subset): {summary[-1].strip()}\n")
        else:
            last = mem.strip().splitlines()[-1] if mem.strip() else "(empty log)"
            out.append(f"compute-sanitizer memcheck (subset): no ERROR SUMMARY line (skipped, cut or crashed); "
                       f"last line: `{last[:200]}`\n")
    demo = texts.get("demo_cuda.json", "").strip()
    if "demo_cuda.json" in texts and not demo:
        last = [l for l in texts.get("demo_cuda.log", "").splitlines() if l.strip() and not l.startswith("====")]
        out.append("`glance demo --device cuda` printed no result" + (f": `{last[-1].strip()[:200]}`" if last else "") +
                   " (demo_cuda.log).\n")
    if demo:
        try:
            d = json.loads(demo)
            r, dn = d.get("rlt", {}), d.get("dense", {})
            out.append(f"`glance demo --device cuda`: RLT val_acc {fmt(r.get('val_acc'))} at "
                       f"{fmt(r.get('clips_per_s'))} clips/s (kept {fmt(r.get('kept_fraction'))} of the tokens), "
                       f"dense val_acc {fmt(dn.get('val_acc'))} at {fmt(dn.get('clips_per_s'))} clips/s, "
                       f"speed-up {fmt(d.get('speedup'))}.\n")
        except json.JSONDecodeError:
            out.append("demo_cuda.json is not one JSON object: the demo did not finish (see demo_cuda.log).\n")


def section_targets(rows, out):
    """Each GPU target, met or not, from the lines present; a target with no lines says so."""
    out.append("## Targets\n")
    body = []
    ops = [r for r in rows if r.get("bench") == "cuda_ops"]
    if ops:
        # An op that stopped with an error or failed its check counts as not met, whatever its ratio.
        def ok(r):
            return r.get("ratio") is not None and r["ratio"] >= 0.7 and not r.get("error") and r.get("check") != "FAILED"
        timed = [r for r in ops if r.get("ratio") is not None]
        worst = min(timed, key=lambda r: r["ratio"]) if timed else None
        met = sum(1 for r in ops if ok(r))
        bad = [r.get("case") for r in ops if r.get("error") or r.get("check") == "FAILED"]
        body.append(["elementwise and reductions >= 0.7 of the d2d copy", f"{met} of {len(ops)} ops",
                     (f"worst {worst.get('case')} {fmt(worst['ratio'])}" if worst else "no ratio") +
                     (f"; failed or stopped: {', '.join(map(str, bad))}" if bad else ""),
                     "yes" if met == len(ops) else "**no**"])
    else:
        body.append(["elementwise and reductions >= 0.7 of the d2d copy", "not measured", "", "–"])
    glance, torch = gpu_train_lines(rows)
    pairs = []
    for g in glance:
        ref = [r for r in torch if train_key(r) == train_key(g)]
        if ref and g.get("attention") != "reference":
            pairs.append((g, ref[-1]["median_ms"] / g["glance"]))
    if pairs:
        worst = min(pairs, key=lambda p: p[1])
        body.append(["RLT training step >= 1.0x PyTorch eager", f"{sum(p[1] >= 1.0 for p in pairs)} of "
                     f"{len(pairs)} cases", f"worst {worst[0].get('case')} {fmt(worst[1])}",
                     "yes" if all(p[1] >= 1.0 for p in pairs) else "**no**"])
    else:
        body.append(["RLT training step >= 1.0x PyTorch eager", "not measured", "", "–"])
    a = [r for r in rows if r.get("bench") == "attention" and "skipped" not in r]
    g_att = [r for r in a if str(r.get("kernel", "")).startswith("fused")]
    sdpa = [r for r in a if r.get("kernel") == "torch_sdpa"]

    # glance's forward+backward against the fastest SDPA line of one variant (and backend, unless None) on the
    # same case and dtype; `unit` names what was compared.
    def against(dtype, backend, variant, goal, label, unit="cases"):
        found = []
        for g in g_att:
            if g.get("dtype") != dtype or not g.get("fwdbwd_ms"):
                continue
            refs = [r for r in sdpa if r.get("case") == g.get("case") and r.get("dtype") == dtype
                    and r.get("variant", "dense") == variant and r.get("fwdbwd_ms")
                    and (backend is None or r.get("backend_ran") == backend)]
            if refs:
                best = min(refs, key=lambda r: r["fwdbwd_ms"])
                found.append((g.get("case"), best["fwdbwd_ms"] / g["fwdbwd_ms"]))
        if not found:
            body.append([label, "not measured", "", "–"])
            return
        worst = min(found, key=lambda f: f[1])
        met = sum(1 for f in found if f[1] >= goal)
        body.append([label, f"{met} of {len(found)} {unit}", f"worst {worst[0]} {fmt(worst[1])}",
                     "yes" if met == len(found) else "**no**"])

    against("fp32", "efficient", "dense", 1.0, "fp32 fused fwd+bwd >= 1.0x SDPA memory-efficient")
    against("bf16", "flash", "dense", 0.6, "bf16 fused fwd+bwd >= 0.6x SDPA flash")
    for dtype in ("fp32", "bf16"):  # only the packs have padded lines
        against(dtype, None, "padded", 2.0, f"{dtype} variable-length pack >= 2x the padded batch", "packs")
    out.append(table(["target", "met in", "worst ratio", "met"], body))
    out.append("\nRatios as in the tables below (> 1: glance faster); the attention targets compare forward+backward "
               "against the named SDPA backend as it actually ran (backend_ran), the padded batch against its fastest "
               "backend.\n")


def section_ops(rows, out):
    copy = [r for r in rows if r.get("bench") == "cuda_copy"]
    ops = [r for r in rows if r.get("bench") == "cuda_ops"]
    out.append("## Memory-bound ops: glance GB/s as a fraction of cudaMemcpy device-to-device\n")
    if not ops:
        out.append("No cuda_ops lines in the input (bench_cuda_ops did not run or printed nothing).\n")
        return
    for c in copy:
        out.append(f"Reference: cudaMemcpy d2d of {c.get('shape')} float32: **{fmt(c.get('reference'))} GB/s** "
                   f"(bytes read + written, median of {c.get('reps')}).\n")
    body = []
    for r in ops:
        ratio = r.get("ratio")
        body.append([r.get("case"), r.get("shape"), r.get("ms"), r.get("glance"), ratio,
                     "yes" if ratio is not None and ratio >= r.get("target", 0.7) else "**no**", chk(r)])
    out.append(table(["op", "shape", "ms", "GB/s", "fraction of copy", ">= 0.7", "check"], body))
    met = sum(1 for r in ops if r.get("ratio") is not None and r["ratio"] >= r.get("target", 0.7))
    out.append(f"\n{met} of {len(ops)} ops reach 0.7 of the copy's bandwidth.\n")


def section_gemm(rows, out):
    g = [r for r in rows if r.get("bench") == "cuda_gemm"]
    out.append("## GEMM: glance ops::matmul vs cuBLAS called directly\n")
    if not g:
        out.append("No cuda_gemm lines in the input.\n")
        return
    body = [[r.get("case"), r.get("shape"), r.get("math"), r.get("glance"), r.get("reference"), r.get("ratio"),
             r.get("rel_err_glance_vs_f64"), r.get("rel_err_cublas_vs_f64"), r.get("max_abs_diff_vs_cublas"),
             chk(r)] for r in g]
    out.append(table(["case", "shape", "math", "glance TFLOP/s", "cuBLAS TFLOP/s", "ratio",
                      "rel err glance", "rel err cuBLAS", "max abs diff", "check"], body))
    out.append("\nrel err: ||C - C_f64|| / ||C_f64|| against a float64 product of the same inputs. "
               "Ratio = glance / cuBLAS (best of two rounds' medians each).\n")


def section_fused(rows, out):
    f = [r for r in rows if r.get("bench") == "cuda_fused"]
    out.append("## Fused kernels (cuda/fused.h) vs the unfused glance ops\n")
    if not f:
        out.append("No cuda_fused lines in the input.\n")
        return
    body = [[r.get("case"), r.get("shape"), r.get("glance"), r.get("reference"), r.get("ratio"), r.get("fused_gbps"),
             r.get("fraction_of_copy"), chk(r)] for r in f]
    out.append(table(["kernel", "shape", "fused ms", "unfused ms", "speed-up", "fused GB/s", "fraction of copy",
                      "check"], body))
    out.append("")


def section_train(rows, out):
    glance, torch = gpu_train_lines(rows)
    out.append("## RLT training step on the GPU: glance vs PyTorch eager\n")
    if not glance and not torch:
        out.append("No GPU train_step lines in the input.\n")
        return
    body = []
    for g in glance:
        ref = [r for r in torch if train_key(r) == train_key(g)]
        r = ref[-1] if ref else None
        ratio = r["median_ms"] / g["glance"] if r else None
        body.append([g.get("case"), "tf32" if g.get("tf32") else "fp32", g.get("attention"), g.get("tokens"),
                     g.get("glance"), g.get("clips_per_s"),
                     r and f"{fmt(r['median_ms'])} ({r.get('attention')}{', padded' if r.get('counts') else ''})",
                     ratio, "–" if ratio is None else ("yes" if ratio >= 1.0 else "**no**")])
    for r in torch:  # PyTorch cases with no glance run beside them
        if not any(train_key(g) == train_key(r) for g in glance):
            body.append([r.get("case"), "tf32" if r.get("tf32") else "fp32", "–", r.get("tokens"), None, None,
                         f"{fmt(r['median_ms'])} ({r.get('attention')})", None, "–"])
    out.append(table(["case", "matmul", "glance kernel", "tokens", "glance ms/step", "glance clips/s",
                      "PyTorch ms/step (variant)", "ratio (PyTorch / glance)", ">= 1.0"], body))
    out.append("\nMedians over the timed steps; ratio > 1 means glance is faster. PyTorch: the fastest of the "
               "attention variants it timed (interleaved), eager mode.\n")
    # RLT vs dense on the same synthetic clips
    pairs = []
    for g in glance:
        if g.get("policy") != "rlt":
            continue
        dense_case = g["case"].replace("rlt_rlt_", "rlt_dense_", 1)
        dense = [d for d in glance if d.get("case") == dense_case and d.get("attention") == g.get("attention")
                 and bool(d.get("tf32")) == bool(g.get("tf32"))]
        if dense:
            d = dense[-1]
            pairs.append(["glance", g.get("preset"), g.get("attention"), d["glance"], g["glance"],
                          g.get("kept_fraction"), d["glance"] / g["glance"]])
    for r in torch:
        if r.get("policy") != "rlt":
            continue
        dense = [d for d in torch if d.get("policy") == "dense" and d.get("preset") == r.get("preset")
                 and train_mode(d) == train_mode(r)]
        if dense:
            d = dense[-1]
            kept = r["tokens"] / r["grid_tokens"] if r.get("grid_tokens") else None
            pairs.append(["PyTorch (padded)", r.get("preset"), r.get("attention"), d["median_ms"], r["median_ms"],
                          kept, d["median_ms"] / r["median_ms"]])
    if pairs:
        out.append("### RLT vs dense (same clips; dense ms / RLT ms)\n")
        out.append(table(["engine", "preset", "attention", "dense ms/step", "RLT ms/step", "tokens kept",
                          "speed-up"], pairs))
        out.append("")


def section_attention(rows, out):
    a = [r for r in rows if r.get("bench") == "attention"]
    glance = [r for r in a if str(r.get("kernel", "")).startswith("fused")]
    torch = [r for r in a if r.get("kernel") == "torch_sdpa" and "skipped" not in r]
    out.append("## Attention: glance's fused kernels vs PyTorch SDPA (fastest backend that ran)\n")
    if not glance:
        out.append("No glance attention lines in the input.\n")
        return
    body = []
    for g in glance:
        cands = [t for t in torch if t.get("case") == g.get("case") and t.get("dtype") == g.get("dtype")]
        fwd = min((t for t in cands if t.get("fwd_ms")), key=lambda t: t["fwd_ms"], default=None)
        both = min((t for t in cands if t.get("fwdbwd_ms")), key=lambda t: t["fwdbwd_ms"], default=None)
        body.append([g.get("case"), g.get("dtype"), g.get("kernel"), g.get("fwd_ms"), g.get("fwd_tflops"),
                     fwd and f"{fmt(fwd['fwd_ms'])} ({fwd.get('variant')}/{fwd.get('backend_ran')})",
                     fwd and fwd["fwd_ms"] / g["fwd_ms"], g.get("fwdbwd_ms"),
                     both and f"{fmt(both['fwdbwd_ms'])} ({both.get('variant')}/{both.get('backend_ran')})",
                     both and g.get("fwdbwd_ms") and both["fwdbwd_ms"] / g["fwdbwd_ms"]])
    out.append(table(["case", "dtype", "glance kernel", "fwd ms", "fwd TFLOP/s", "SDPA fwd ms", "ratio fwd",
                      "fwd+bwd ms", "SDPA fwd+bwd ms", "ratio fwd+bwd"], body))
    out.append("\nratio = PyTorch ms / glance ms (> 1: glance faster). fp16 has no PyTorch line (the script times "
               "fp32 and bf16).\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", default="", help="env.txt of the run (device, commit)")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    texts = {}
    rows = read_lines(args.paths, texts)
    env = args.env
    if not env:
        for p in args.paths:
            cand = os.path.join(p, "env.txt") if os.path.isdir(p) else ""
            if cand and os.path.isfile(cand):
                env = cand
                break
    out = []
    dev = next((r for r in rows if r.get("bench") == "cuda_device"), None)
    title = dev["device"] if dev else next((r.get("device") for r in rows if r.get("device", "").startswith("NVIDIA")),
                                           "GPU")
    out.append(f"# GPU benchmarks: {title}\n")
    for line in env_lines(env):
        out.append(f"    {line}")
    if dev:
        out.append(f"\nDevice (from bench_cuda_ops): {dev['device']}, compute capability {dev.get('compute_capability')}, "
                   f"{dev.get('multiprocessors')} SMs, L2 {dev.get('l2_bytes', 0) / 2**20:.0f} MiB, "
                   f"{dev.get('global_memory_bytes', 0) / 2**30:.1f} GiB, CUDA runtime {dev.get('cuda_runtime')}, "
                   f"driver {dev.get('cuda_driver')}.")
    out.append(f"\nInput: {len(rows)} JSON lines from {', '.join(args.paths)}.\n")
    section_correctness(texts, out)
    section_targets(rows, out)
    section_ops(rows, out)
    section_gemm(rows, out)
    section_fused(rows, out)
    section_train(rows, out)
    section_attention(rows, out)
    failed = [r for r in rows if r.get("check") == "FAILED"]
    if failed:
        out.append(f"**{len(failed)} correctness check(s) FAILED**: " + ", ".join(str(r.get("case")) for r in failed))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
