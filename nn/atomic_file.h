// Writing a file so that a crash, a full disk or kill -9 at any moment leaves either the old file or the new
// one at its path, never half of one, and no litter:
//
//   1. the bytes go to "<path>.tmp.<pid>" beside it, which is fsync'ed (the data is on disk),
//   2. renamed over <path> (atomic within a folder on POSIX),
//   3. and the folder is fsync'ed (the rename itself is on disk).
//
// A failure removes the temporary file. A process killed between 1 and 2 leaves its temporary behind: the
// next write to the same path removes every "<path>.tmp.<pid>" whose process no longer exists.
#pragma once
#include <cstdio>
#include <functional>
#include <string>

namespace glance::nn {

// `write` puts the whole content into the (temporary) file it is given and returns false on a failed write.
// Throws std::runtime_error naming the problem (the caller adds the path) and leaves no temporary file behind.
void write_file_atomically(const std::string& path, const std::function<bool(std::FILE*)>& write);

// "<path>.tmp.<this process's id>": where write_file_atomically puts the bytes before the rename.
std::string temporary_path(const std::string& path);

// Removes "<path>.tmp.<pid>" files left by processes that no longer run; returns how many it removed.
int remove_stale_temporaries(const std::string& path);

// Fails now, naming `option` and `path`, unless a file can be written at `path` (its folders are created
// first): an output option is checked before a run starts, not found unwritable at its end. What is at `path`
// already must be a regular file (not a FIFO, a device or a folder: tensor/regular_file.h).
void check_writable(const std::string& path, const std::string& option);

}  // namespace glance::nn
