// What the fuzz targets share. glance's readers take a path (they check what is there before opening it:
// tensor/regular_file.h), so each input is written to a file of its own in the system's temporary folder
// first, one per process and target, removed when the process ends.
//
// A target returns normally for any input: a reader's std::exception is the clear error glance promises for
// bad input. A crash, a sanitizer report, a leak, a hang or an allocation past libFuzzer's limit is a bug; so is
// a broken promise checked here (a file read back differently from how it was written): fuzz_check aborts.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace glance::fuzz {

class InputFile {
 public:
  // `name` tells the targets' files apart, `extension` is the file's (".png": readers that look at it see one).
  InputFile(const std::string& name, const std::string& extension)
      : path_((std::filesystem::temp_directory_path() /
               ("glance_fuzz_" + std::to_string(::getpid()) + "_" + name + extension)).string()) {}
  ~InputFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  // Writes the input as the whole file; returns its path.
  const std::string& write(const uint8_t* data, size_t size) const {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();  // the machine's fault, not the input's: stop rather than test nothing
    }
    return path_;
  }
  // A second file beside it (for a round trip: what was read, written again).
  std::string sibling(const std::string& suffix) const { return path_ + suffix; }

 private:
  std::string path_;
};

// A promise of glance broken by this input: print it and abort, so libFuzzer keeps the input.
inline void fuzz_check(bool holds, const char* what) {
  if (!holds) {
    std::fprintf(stderr, "fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace glance::fuzz
