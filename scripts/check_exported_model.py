#!/usr/bin/env python3
"""Loads a model that `glance convert --to hf-videomae|timm-vit|videomae-v2` wrote into the real library, with strict
key matching, and runs the fixture clips through it: the logits must match those the library computed for the
model the fixtures were made from (tests/fixtures/models, scripts/make_model_fixtures.py), so a round trip
library -> glance -> library loses nothing.

    python3 scripts/check_exported_model.py hf-videomae OUT_FOLDER
    python3 scripts/check_exported_model.py timm-vit OUT_FOLDER
    python3 scripts/check_exported_model.py videomae-v2 OUT.safetensors

Run by hand; needs the virtual environment of scripts/make_model_fixtures.py (created on first use).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_model_fixtures as fixtures  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    fixtures.ensure_libraries()
    import torch
    from safetensors.torch import load_file
    layout, path = sys.argv[1], sys.argv[2]
    folder = os.path.join(fixtures.ROOT, "tests", "fixtures", "models")
    clips = load_file(os.path.join(folder, "clips.safetensors"))["pixel_values"]
    expected = load_file(os.path.join(folder, "expected.safetensors"))
    with torch.no_grad():
        if layout == "hf-videomae":
            import transformers
            model, info = transformers.VideoMAEForVideoClassification.from_pretrained(path, output_loading_info=True)
            model.eval()
            missing = {k: v for k, v in info.items() if v}
            if missing:
                sys.exit(f"not a strict match: {missing}")
            missing = "all keys matched"
            got, want = model(clips).logits, expected["dense.logits"]
        elif layout == "videomae-v2":
            import transformers
            ref = transformers.VideoMAEForVideoClassification.from_pretrained(os.path.join(folder, "hf_videomae")).eval()
            state = load_file(path)
            want_names = set(fixtures.to_v2_names(torch, ref.state_dict()))
            if set(state) != want_names:
                sys.exit(f"names differ: missing {sorted(want_names - set(state))}, unexpected {sorted(set(state) - want_names)}")
            got, want = state["head.weight"], fixtures.to_v2_names(torch, ref.state_dict())["head.weight"]
            missing = None
        elif layout == "timm-vit":
            import timm
            with open(os.path.join(path, "config.json")) as f:
                args = json.load(f)["model_args"]
            model = timm.models.vision_transformer.VisionTransformer(**args).eval()
            missing = model.load_state_dict(load_file(os.path.join(path, "model.safetensors")), strict=True)
            got, want = model(clips[:, 0]), expected["timm.logits"]
        else:
            sys.exit(f"unknown layout {layout}")
    err = (got - want).abs().max().item()
    print(f"{layout}: loaded {path} ({missing if missing is not None else 'names equal'}); max |difference| {err:.3g}")
    sys.exit(0 if err < 1e-4 else 1)


if __name__ == "__main__":
    main()
