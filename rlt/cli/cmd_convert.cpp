// glance convert: checkpoints of transformers' VideoMAE, VideoMAE's own code and timm's ViT in and out of glance
// (rlt/convert.h says how each part maps).
#include <filesystem>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "rlt/convert.h"

namespace glance::cli {

int run_convert(int argc, char** argv) {
  Args a("glance convert IN OUT",
         "convert a checkpoint between layouts: IN is a .safetensors file or a folder with model.safetensors "
         "(and config.json); OUT a .safetensors file (glance, videomae-v2) or a folder (hf-videomae, timm-vit)");
  a.positional("IN", "the checkpoint to read");
  a.positional("OUT", "where to write the converted one");
  a.option("from", "", "IN's layout: glance, hf-videomae, videomae-v2 or timm-vit (default: detected from the names)");
  a.option("to", "glance", "OUT's layout: glance, hf-videomae, videomae-v2 or timm-vit");
  a.option("inflate", "central", "timm-vit in: the 2-D patch kernel on the tubelet's central frame, or 'average'd over it");
  a.option("frames", "16", "timm-vit, videomae-v2 in: frames per clip of the video model", Range::integers(1, 1024));
  a.option("tubelet", "2", "timm-vit in: frames per tubelet", Range::integers(1, 1024));
  a.option("image-size", "224", "videomae-v2 in: frame size (its checkpoints do not store it)", Range::integers(1, 4096));
  a.option("heads", "0", "videomae-v2, timm-vit in: attention heads, where no config says (0: the standard ViT's)",
           Range::integers(0, 1024));
  a.flag("drop-unsupported", "out of glance: drop what the target cannot express (the length encoding, a 3-D "
                             "positional table) instead of refusing");
  if (!a.parse(argc, argv)) return 0;  // --help was printed

  std::vector<std::string> notes;
  rlt::ConvertOptions o;
  o.inflate = a.str("inflate");
  o.frames = a.integer("frames"), o.tubelet = a.integer("tubelet"), o.image_size = a.integer("image-size");
  o.heads = a.integer("heads");
  o.drop_unsupported = a.on("drop-unsupported");
  o.notes = &notes;
  const rlt::CheckpointLayout to = rlt::parse_checkpoint_layout(a.str("to"));
  // A file goes into an existing folder: say so now, not after the conversion.
  const bool one_file = to == rlt::CheckpointLayout::Glance || to == rlt::CheckpointLayout::VideoMAEv2;
  const std::filesystem::path parent = std::filesystem::absolute(a.arg("OUT")).parent_path();
  if (one_file && !std::filesystem::is_directory(parent)) {
    throw std::invalid_argument("OUT " + a.arg("OUT") + ": the folder " + parent.string() + " does not exist");
  }

  const rlt::ForeignCheckpoint in = rlt::read_foreign_checkpoint(a.arg("IN"));
  std::string found;
  const rlt::CheckpointLayout detected = rlt::detect_layout(in.tensors, &found);
  const rlt::CheckpointLayout from = a.str("from").empty() ? detected : rlt::parse_checkpoint_layout(a.str("from"));
  std::cout << "read " << in.path << ": " << found << (a.str("from").empty() ? "" : " (--from " + a.str("from") + ")")
            << "\n";

  const rlt::GlanceModel model = rlt::to_glance(in, from, o);
  if (to == rlt::CheckpointLayout::Glance) {
    rlt::write_glance_model(model, a.arg("OUT"));
  } else {
    rlt::write_foreign_model(rlt::from_glance(model, to, o), to, a.arg("OUT"));
  }
  for (const std::string& n : notes) std::cout << "  note: " << n << "\n";
  const rlt::ModelConfig& c = model.config;
  std::cout << "wrote " << a.arg("OUT") << " (" << rlt::layout_name(to) << "): width " << c.dim << ", depth " << c.depth
            << ", " << c.heads << " heads, " << c.frames << " frames of " << c.image_size << " x " << c.image_size
            << ", tubelets " << c.tubelet << " x " << c.patch << " x " << c.patch << ", "
            << (c.classes > 0 ? std::to_string(c.classes) + " classes" : std::string("no head")) << "\n";
  return 0;
}

}  // namespace glance::cli
