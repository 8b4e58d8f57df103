#!/usr/bin/env python3
"""A PyTorch checkpoint (.pth, .pt, .bin: a pickle) as a safetensors file that `glance convert` reads.

    python3 scripts/pth_to_safetensors.py IN.pth OUT.safetensors [--float32]

Loads IN with torch.load(weights_only=True) (no code in the pickle runs), takes the state dict out of the
wrappers training scripts put around it ("model", "module", "state_dict", "model_state"), strips a
DistributedDataParallel "module." prefix, and writes every tensor contiguous. --float32 widens float16 and
bfloat16 tensors to float32, which glance needs. Uses the virtual environment of scripts/make_model_fixtures.py
when torch does not import here (created on first use).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures as fixtures  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--float32", action="store_true", help="widen float16 / bfloat16 tensors to float32")
    args = ap.parse_args()
    fixtures.ensure_libraries()
    import torch
    from safetensors.torch import save_file

    state = torch.load(args.input, map_location="cpu", weights_only=True)
    for key in ("model", "module", "state_dict", "model_state"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        sys.exit(f"pth_to_safetensors: {args.input}: no state dict of tensors found")
    out = {}
    for name, t in state.items():
        name = name[len("module."):] if name.startswith("module.") else name
        if args.float32 and t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        out[name] = t.contiguous()
    save_file(out, args.output, metadata={"format": "pt"})
    print(f"pth_to_safetensors: {len(out)} tensors -> {args.output}")


if __name__ == "__main__":
    main()
