// glance reads data only from regular files. Anything else at a path given as input is refused before it
// is opened, with a reason:
//   a FIFO (named pipe)   opening it blocks until some process writes to it: with no writer, forever
//   a character device    /dev/zero never ends, /dev/urandom never ends and is never the same twice
//   a block device, a socket, a folder: not a file's bytes either
// Symbolic links are followed: a link to a regular file is that file. Every reader calls this first (frames,
// safetensors, .npy, JSON configs, the metrics log a resumed run continues), and the outputs of a run are
// checked the same way before it starts (nn/atomic_file.h).
#pragma once
#include <string>

namespace glance {

// "" when `path` is a regular file (after following links); otherwise what it is, as a phrase that follows
// the path in a message: "is a FIFO (named pipe), not a regular file", "does not exist", "cannot be read:
// Permission denied", ...
std::string regular_file_problem(const std::string& path);

}  // namespace glance
