// Replays inputs through a fuzz target without libFuzzer, for the regular (GCC) build: every file given, and
// every file in every folder given, is passed to LLVMFuzzerTestOneInput once. ctest runs each target over its
// seed corpus and over the inputs that once made it fail (fuzz/regressions/<target>/), so a fixed crash stays
// fixed in every build, with or without clang.
//   fuzz_replay_json fuzz/corpus/json fuzz/regressions/json
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& entry : fs::directory_iterator(arg)) {
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') files.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else if (fs::exists(arg, ec)) {
      std::fprintf(stderr, "replay: %s is not a file or a folder\n", argv[i]);
      return 2;
    }  // a folder that is not there (no regressions yet) holds nothing to replay
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.string().c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replay: %zu inputs, none failed\n", files.size());
  return files.empty() ? 1 : 0;  // no input at all: the corpus is missing, which is a mistake
}
