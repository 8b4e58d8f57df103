#!/usr/bin/env python3
"""Reference outputs of the real libraries for glance's checkpoint conversion tests (tests/fixtures/models/).

    python3 scripts/make_model_fixtures.py [--out tests/fixtures/models]

Run by hand, never by the tests. The first run creates a virtual environment in build/venv-reference and installs
PyTorch 2.x, Hugging Face transformers and timm from PyPI into it (a few GB, a few minutes), then runs again inside
it. It builds small randomly initialised models of each layout glance converts, saves them as their libraries
save them, runs generated clips through the libraries' own forward passes, and writes what came out:

  hf_videomae/            VideoMAEForVideoClassification: config.json + model.safetensors (transformers' names)
  hf_videomae_bare/       VideoMAEModel (no head): config.json + model.safetensors
  videomae_v2.safetensors the same classifier under the names of the original VideoMAE / VideoMAE-v2 code
                          (patch_embed.proj, blocks.N.attn.qkv + q_bias/v_bias, fc_norm, head), as its .pth
                          checkpoints hold them, renamed from the transformers model
  timm_vit/               timm VisionTransformer without a class token, average pooling: model.safetensors +
                          config.json (the arguments it was built with)
  clips.safetensors       pixel_values [B, T, 3, H, W] float32 (ImageNet-normalised), the clips run through
  expected.safetensors    for the VideoMAE classifier: dense.block{i} [B, N, D] after each block, dense.logits,
                          rlt.keep [B, N] (uint8, the RLT mask computed here the way the paper's code computes
                          it), rlt.clip{b}.block{i} [n_b, D] and rlt.logits (each clip's kept tokens alone
                          through the same layers); for timm: timm.block{i} [B, n, D] and timm.logits on the
                          first frame of each clip
  videomae_vitb_names.txt the names and shapes of a ViT-B/16 VideoMAEForVideoClassification (16 x 224 x 224, 400
                          classes) as save_pretrained writes them: "name dim0 dim1 ...", one a line

Everything is seeded: running it again writes the same files (given the same library versions, which
versions.txt records).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(ROOT, "build", "venv-reference")
PACKAGES = ["torch", "transformers", "timm", "safetensors", "numpy"]


def ensure_libraries():
    """Re-runs this script inside build/venv-reference (created and filled on first use) unless torch,
    transformers and timm import here."""
    try:
        import torch, transformers, timm, safetensors  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python3")
    if os.path.abspath(sys.prefix) == os.path.abspath(VENV):
        sys.exit("make_model_fixtures: the libraries do not import inside " + VENV)
    if not os.path.exists(python):
        print(f"make_model_fixtures: creating {VENV} and installing {' '.join(PACKAGES)} from PyPI", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "-q"] + PACKAGES)
    os.execv(python, [python] + sys.argv)


# The tiny models: width 48, 3 heads, depth 2, MLP 4x; clips of 8 frames of 32 x 32, tubelets 2 x 8 x 8
# (a 4 x 4 x 4 grid of 64 tokens); 5 classes.
FRAMES, SIZE, TUBELET, PATCH, DIM, HEADS, DEPTH, CLASSES = 8, 32, 2, 8, 48, 3, 2, 5
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TAU = 0.1


def make_clips(torch):
    """Two clips of 8 RGB frames: a textured static background with a square moving over it (one to the right,
    one down), so that RLT drops the tubelets the square never crosses. uint8 pixels, then [0, 1], then
    ImageNet-normalised: pixel_values [B, T, 3, H, W]."""
    g = torch.Generator().manual_seed(7)
    clips = []
    for b, (dy, dx) in enumerate([(0, 3), (3, 0)]):
        background = torch.randint(0, 256, (3, SIZE, SIZE), generator=g).to(torch.uint8)
        frames = []
        for t in range(FRAMES):
            f = background.clone()
            y, x = 4 + dy * t // 2, 4 + dx * t // 2
            f[:, y:y + 6, x:x + 6] = torch.tensor([250, 30 + 40 * b, 20], dtype=torch.uint8).view(3, 1, 1)
            frames.append(f)
        clips.append(torch.stack(frames))  # [T, 3, H, W]
    x = torch.stack(clips).float() / 255.0
    mean, std = torch.tensor(MEAN).view(1, 1, 3, 1, 1), torch.tensor(STD).view(1, 1, 3, 1, 1)
    return (x - mean) / std


def rlt_keep(torch, pixel_values):
    """The keep mask of the paper's code (rccchoudhury/rlt, src/models/static_token_utils.py), written again
    here: mean |difference| over each patch and the channels between the last frame of tubelet t and the first
    frame of tubelet t - 1, the first tubelet always kept, kept iff > tau. [B, T'*H'*W'] in (t, h, w) order."""
    x = pixel_values.permute(0, 2, 1, 3, 4)  # [B, C, T, H, W]
    u = TUBELET
    diffs = (x[:, :, (2 * u - 1)::u] - x[:, :, :-u:u]).abs()
    blocks = torch.nn.functional.avg_pool3d(diffs, (1, PATCH, PATCH)).mean(dim=1, keepdim=True)
    first = torch.ones_like(blocks[:, :, 0:1]) * 255
    blocks = torch.cat([first, blocks], dim=2)
    return (blocks.squeeze(1) > TAU).flatten(1)


def randomise(torch, model, seed):
    """Every parameter drawn anew (biases and LayerNorm weights included), so that a mapping that drops or swaps
    one shows up in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.2
            p.copy_(1.0 + noise if name.endswith("weight") and p.dim() == 1 else noise)


def videomae_config(transformers, classes):
    return transformers.VideoMAEConfig(
        image_size=SIZE, patch_size=PATCH, num_channels=3, num_frames=FRAMES, tubelet_size=TUBELET,
        hidden_size=DIM, num_hidden_layers=DEPTH, num_attention_heads=HEADS, intermediate_size=4 * DIM,
        qv_bias=True, use_mean_pooling=True, num_labels=classes,
        id2label={i: f"class_{i}" for i in range(classes)}, label2id={f"class_{i}": i for i in range(classes)})


def to_v2_names(torch, state):
    """transformers' VideoMAE names -> the original VideoMAE / VideoMAE-v2 code's (the mapping of transformers'
    own conversion script, run backwards), with q, k and v merged into one qkv weight and no k bias."""
    renamed = {}
    for name, t in state.items():
        n = name.replace("videomae.", "")
        n = n.replace("embeddings.patch_embeddings.projection", "patch_embed.proj")
        n = n.replace("encoder.layer.", "blocks.")
        n = n.replace("layernorm_before", "norm1").replace("layernorm_after", "norm2")
        n = n.replace("attention.output.dense", "attn.proj")
        n = n.replace("intermediate.dense", "mlp.fc1").replace("output.dense", "mlp.fc2")
        n = n.replace("classifier", "head")
        renamed[n] = t
    out = {n: t for n, t in renamed.items() if ".attention.attention." not in n}
    for n in renamed:
        if n.endswith(".attention.attention.query.weight"):
            block, a = n.split(".attention.attention.")[0], n[: -len("query.weight")]
            out[block + ".attn.qkv.weight"] = torch.cat(
                [renamed[a + "query.weight"], renamed[a + "key.weight"], renamed[a + "value.weight"]])
            out[block + ".attn.q_bias"] = renamed[a + "query.bias"]
            out[block + ".attn.v_bias"] = renamed[a + "value.bias"]
    return out


def disk_name(name):
    """The name transformers writes a VideoMAE tensor under (it renames q/v biases back when saving)."""
    return name.replace("attention.attention.query.bias", "attention.attention.q_bias").replace(
        "attention.attention.value.bias", "attention.attention.v_bias")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "models"))
    args = ap.parse_args()
    ensure_libraries()
    import torch
    import transformers
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    out = lambda *p: os.path.join(args.out, *p)  # noqa: E731
    contiguous = lambda d: {k: v.detach().contiguous() for k, v in d.items()}  # noqa: E731

    pixel_values = make_clips(torch)
    save_file({"pixel_values": pixel_values}, out("clips.safetensors"))
    expected = {}

    # ---- transformers VideoMAEForVideoClassification, dense and with RLT --------------------------------------
    model = transformers.VideoMAEForVideoClassification(videomae_config(transformers, CLASSES)).eval()
    randomise(torch, model, 1)
    model.save_pretrained(out("hf_videomae"), safe_serialization=True)
    with torch.no_grad():
        o = model(pixel_values, output_hidden_states=True)
        for i in range(DEPTH):
            expected[f"dense.block{i}"] = o.hidden_states[i + 1]
        expected["dense.logits"] = o.logits

        keep = rlt_keep(torch, pixel_values)
        expected["rlt.keep"] = keep.to(torch.uint8)
        emb = model.videomae.embeddings
        tokens = emb.patch_embeddings(pixel_values) + emb.position_embeddings.to(pixel_values.dtype)  # [B, N, D]
        logits = []
        for b in range(pixel_values.shape[0]):
            x = tokens[b][keep[b]].unsqueeze(0)  # this clip's kept tokens, (t, h, w) order
            for i, layer in enumerate(model.videomae.encoder.layer):
                x = layer(x)
                x = x[0] if isinstance(x, tuple) else x
                expected[f"rlt.clip{b}.block{i}"] = x[0]
            logits.append(model.classifier(model.fc_norm(x.mean(1)))[0])
        expected["rlt.logits"] = torch.stack(logits)
    save_file(contiguous(to_v2_names(torch, model.state_dict())), out("videomae_v2.safetensors"))

    # ---- the bare VideoMAEModel (a pre-trained encoder without a head) -----------------------------------------
    bare = transformers.VideoMAEModel(videomae_config(transformers, CLASSES)).eval()
    randomise(torch, bare, 2)
    bare.save_pretrained(out("hf_videomae_bare"), safe_serialization=True)
    with torch.no_grad():
        expected["bare.last_hidden_state"] = bare(pixel_values).last_hidden_state

    # ---- timm VisionTransformer, no class token, average pooling, on each clip's first frame ---------------------
    timm_args = dict(img_size=SIZE, patch_size=PATCH, in_chans=3, num_classes=CLASSES, embed_dim=DIM, depth=DEPTH,
                     num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True, class_token=False, global_pool="avg")
    vit = timm.models.vision_transformer.VisionTransformer(**timm_args).eval()
    randomise(torch, vit, 3)
    os.makedirs(out("timm_vit"), exist_ok=True)
    save_file(contiguous(vit.state_dict()), out("timm_vit", "model.safetensors"))
    with open(out("timm_vit", "config.json"), "w") as f:
        json.dump({"architecture": "vit_custom", "model_args": timm_args,
                   "label_names": [f"class_{i}" for i in range(CLASSES)]}, f, indent=2)
    with torch.no_grad():
        image = pixel_values[:, 0]  # [B, 3, H, W]
        x = vit.pos_drop(vit._pos_embed(vit.patch_embed(image)))
        for i, block in enumerate(vit.blocks):
            x = block(x)
            expected[f"timm.block{i}"] = x
        expected["timm.logits"] = vit(image)

    save_file(contiguous(expected), out("expected.safetensors"))

    # ---- the names and shapes of a ViT-B/16 VideoMAE classifier (no weights: built on the meta device) --------
    # As save_pretrained writes them: transformers keeps the older q_bias / v_bias names on disk (checked here on
    # the tiny model's file).
    from safetensors import safe_open
    with safe_open(out("hf_videomae", "model.safetensors"), "pt") as f:
        on_disk = set(f.keys())
    assert on_disk == {disk_name(n) for n in model.state_dict()}, "save_pretrained's names changed"
    with torch.device("meta"):
        base = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(num_labels=400))
    with open(out("videomae_vitb_names.txt"), "w") as f:
        for name, t in base.state_dict().items():
            f.write(" ".join([disk_name(name)] + [str(s) for s in t.shape]) + "\n")

    with open(out("versions.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\ntimm {timm.__version__}\n")
    print(f"make_model_fixtures: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
