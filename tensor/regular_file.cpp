#include "tensor/regular_file.h"

#include <cerrno>
#include <cstring>

#include <sys/stat.h>

namespace glance {

std::string regular_file_problem(const std::string& path) {
  // stat, not open: open() on a FIFO waits for a writer. stat follows symbolic links.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return "does not exist";
    return std::string("cannot be read: ") + std::strerror(errno);
  }
  const mode_t mode = st.st_mode;
  if (S_ISREG(mode)) return "";
  const char* kind = S_ISFIFO(mode)  ? "a FIFO (named pipe)"
                     : S_ISCHR(mode) ? "a character device"
                     : S_ISBLK(mode) ? "a block device"
                     : S_ISDIR(mode) ? "a folder"
                     : S_ISSOCK(mode) ? "a socket"
                                      : "of an unknown kind";
  return std::string("is ") + kind + ", not a regular file";
}

}  // namespace glance
