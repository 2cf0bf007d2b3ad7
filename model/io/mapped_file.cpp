#include "model/io/mapped_file.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.hpp"

namespace vkm::io {

struct MappedFile::Mapping {
  std::filesystem::path path;
  void* base = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (base != MAP_FAILED) ::munmap(base, size);
  }
};

MappedFile MappedFile::open(const std::filesystem::path& path) {
  auto fail = [&](const char* what) -> MappedFile {
    throw Error(path.string() + ": " + what + ": " + std::strerror(errno));
  };
  auto m = std::make_shared<Mapping>();
  m->path = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return fail("cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path.string() + ": not a regular file");
  }
  m->size = size_t(st.st_size);
  if (m->size > 0) m->base = ::mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (m->size > 0 && m->base == MAP_FAILED) {
    errno = map_errno;
    return fail("cannot map");
  }
  MappedFile f;
  f.map_ = std::move(m);
  return f;
}

std::span<const uint8_t> MappedFile::bytes() const {
  if (!map_ || map_->size == 0) return {};
  return {static_cast<const uint8_t*>(map_->base), map_->size};
}

const std::filesystem::path& MappedFile::path() const {
  static const std::filesystem::path none;
  return map_ ? map_->path : none;
}

}  // namespace vkm::io
