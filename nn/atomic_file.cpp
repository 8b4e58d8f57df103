#include "nn/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "tensor/regular_file.h"

namespace glance::nn {

namespace {

std::string error_text(int error) { return std::strerror(error); }

// The folder that holds `path` ("." for a bare file name).
std::filesystem::path folder_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

// fsync on the folder makes a rename in it durable (POSIX leaves it to the file system otherwise).
bool sync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

std::string temporary_path(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

int remove_stale_temporaries(const std::string& path) {
  const std::filesystem::path folder = folder_of(path);
  const std::string prefix = std::filesystem::path(path).filename().string() + ".tmp.";
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    // Only a writer that is gone: kill(pid, 0) fails with ESRCH. A live one (another run saving to the same
    // path now) keeps its file.
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

void write_file_atomically(const std::string& path, const std::function<bool(std::FILE*)>& write) {
  remove_stale_temporaries(path);
  const std::string tmp = temporary_path(path);
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (!file) throw std::runtime_error("cannot create " + tmp + ": " + error_text(errno));
  errno = 0;
  bool ok = write(file);
  ok = ok && std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  int error = errno;
  ok = std::fclose(file) == 0 && ok;
  if (!ok) {
    if (error == 0) error = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error("writing failed: " + error_text(error ? error : EIO));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to it: " + error_text(error));
  }
  if (!sync_folder(folder_of(path))) {
    throw std::runtime_error("written, but syncing its folder failed: " + error_text(errno));
  }
}

void check_writable(const std::string& path, const std::string& option) {
  const std::string what = "--" + option + " " + path;
  std::error_code ec;
  const std::filesystem::path folder = folder_of(path);
  std::filesystem::create_directories(folder, ec);
  if (ec) throw std::invalid_argument(what + ": cannot create the folder " + folder.string() + ": " + ec.message());
  // A FIFO would block the writer (the metrics log opens its file), and a save renames its file over the path:
  // over a device such as /dev/null that would replace the device.
  if (std::filesystem::exists(path, ec)) {
    const std::string problem = regular_file_problem(path);
    if (!problem.empty()) throw std::invalid_argument(what + ": " + problem);
  }
  if (std::filesystem::exists(path, ec) && ::access(path.c_str(), W_OK) != 0) {
    throw std::invalid_argument(what + ": the file is not writable: " + error_text(errno));
  }
  // A probe where the saves will put their temporary file: a read-only or missing folder fails here.
  const std::string probe = temporary_path(path);
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) throw std::invalid_argument(what + ": cannot write in " + folder.string() + ": " + error_text(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace glance::nn
