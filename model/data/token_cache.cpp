#include "model/data/token_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>
#include <type_traits>

#include "engine/error.hpp"

namespace vkm::data {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'V', 'K', 'M', 'T', 'O', 'K', 'C', '1'};

struct CacheHeader {
  char magic[8];
  uint32_t version;
  uint32_t format;
  uint32_t token_bytes;
  uint32_t reserved;
  uint64_t tokenizer_hash;
  uint64_t source_size;
  int64_t source_mtime_ns;
  uint64_t n_samples;
  uint64_t n_tokens;
  uint64_t skipped_lines;
  uint64_t index_offset;
  uint64_t tokens_offset;
  uint64_t mask_offset;  // 0 when there is no mask
  uint64_t file_size;
};
static_assert(std::is_trivially_copyable_v<CacheHeader>);

constexpr uint64_t align64(uint64_t x) { return (x + 63) & ~uint64_t(63); }

struct SourceStamp {
  uint64_t size;
  int64_t mtime_ns;
};

SourceStamp stamp_of(const fs::path& source) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) throw Error(source.string() + ": cannot read: " + std::strerror(errno));
  return {uint64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

void fnv(uint64_t& h, const void* p, size_t n) {
  auto b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
}
void fnv_str(uint64_t& h, std::string_view s) {
  uint64_t n = s.size();
  fnv(h, &n, sizeof n);
  fnv(h, s.data(), s.size());
}

// Streams a file as chunks of whole lines; holds one chunk (and the part line after it) at a time.
class LineReader {
 public:
  LineReader(const fs::path& file, size_t chunk_bytes) : in_(file, std::ios::binary), chunk_(std::max<size_t>(chunk_bytes, 64)) {
    if (!in_) throw Error(file.string() + ": cannot open");
  }
  // The next chunk's lines (views into an internal buffer valid until the next call) and the number of the
  // first. Returns false at the end.
  bool next(std::vector<std::string_view>& lines, int64_t& first_line) {
    lines.clear();
    buf_.erase(0, consumed_);
    consumed_ = 0;
    size_t last_nl = std::string::npos;
    while (true) {
      if (!eof_) {
        const size_t old = buf_.size();
        buf_.resize(old + chunk_);
        in_.read(buf_.data() + old, std::streamsize(chunk_));
        buf_.resize(old + size_t(in_.gcount()));
        if (in_.gcount() == 0 || !in_) eof_ = true;
      }
      last_nl = buf_.rfind('\n');
      if (last_nl != std::string::npos || eof_) break;  // a line longer than a chunk: read more
    }
    const size_t end = last_nl != std::string::npos && !(eof_ && last_nl + 1 < buf_.size()) ? last_nl + 1 : buf_.size();
    if (end == 0) return false;
    first_line = line_;
    for (size_t pos = 0; pos < end;) {
      size_t nl = buf_.find('\n', pos);
      if (nl == std::string::npos || nl >= end) nl = end;
      lines.emplace_back(buf_.data() + pos, nl - pos);
      pos = nl + 1;
    }
    line_ += int64_t(lines.size());
    consumed_ = end;
    return true;
  }

 private:
  std::ifstream in_;
  size_t chunk_;
  std::string buf_;
  size_t consumed_ = 0;
  bool eof_ = false;
  int64_t line_ = 1;
};

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

void write_all(std::ofstream& out, const void* p, size_t n, const fs::path& f) {
  out.write(static_cast<const char*>(p), std::streamsize(n));
  if (!out) throw Error(f.string() + ": write failed");
}

void pad_to(std::ofstream& out, uint64_t& pos, uint64_t target, const fs::path& f) {
  static const char zeros[64] = {};
  write_all(out, zeros, target - pos, f);
  pos = target;
}

// Tokenizes `source` into `dest` (written as dest.tmp.PID, then renamed).
void build_cache(const fs::path& source, const fs::path& dest, const tok::Tokenizer& tk, const CacheOptions& opt) {
  const SourceStamp stamp = stamp_of(source);
  const uint32_t token_bytes = tk.vocab_size() <= 65536 ? 2 : 4;
  const bool sft = opt.format == Format::sft;
  const std::string tmp_base = dest.string() + ".tmp." + std::to_string(::getpid());
  const fs::path tmp_main = tmp_base, tmp_index = tmp_base + ".index", tmp_mask = tmp_base + ".mask";
  struct Cleanup {
    std::vector<fs::path> files;
    ~Cleanup() {
      std::error_code ec;
      for (auto& f : files) fs::remove(f, ec);
    }
  } cleanup{{tmp_main, tmp_index, tmp_mask}};

  std::ofstream out(tmp_main, std::ios::binary | std::ios::trunc), index(tmp_index, std::ios::binary | std::ios::trunc);
  std::ofstream mask;
  if (sft) mask.open(tmp_mask, std::ios::binary | std::ios::trunc);
  if (!out || !index || (sft && !mask)) throw Error(dest.string() + ": cannot write the token cache");

  CacheHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kCacheVersion;
  h.format = uint32_t(opt.format);
  h.token_bytes = token_bytes;
  h.tokenizer_hash = tokenizer_hash(tk);
  h.source_size = stamp.size;
  h.source_mtime_ns = stamp.mtime_ns;
  uint64_t pos = 0;
  write_all(out, &h, sizeof h, tmp_main);
  pos = sizeof h;
  h.tokens_offset = align64(pos);
  pad_to(out, pos, h.tokens_offset, tmp_main);

  uint64_t n_tokens = 0, n_samples = 0, skipped = 0;
  write_all(index, &n_tokens, sizeof n_tokens, tmp_index);

  const int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  LineReader reader(source, opt.chunk_bytes);
  std::vector<std::string_view> lines;
  std::vector<Sample> samples;
  std::vector<std::string> errors;
  std::vector<uint16_t> ids16;
  std::vector<uint32_t> ids32;
  int64_t first_line = 1;
  bool any_record = false;
  while (reader.next(lines, first_line)) {
    const size_t n = lines.size();
    samples.resize(n);
    errors.assign(n, std::string());
    auto work = [&](size_t lo, size_t hi) {
      for (size_t i = lo; i < hi; ++i) {
        samples[i].ids.clear();
        samples[i].mask.clear();
        if (blank(lines[i])) continue;
        errors[i] = encode_record(lines[i], opt.format, tk, samples[i]);
      }
    };
    const size_t t_count = std::min<size_t>(size_t(threads), n);
    std::vector<std::thread> pool;
    std::exception_ptr failure;
    for (size_t t = 1; t < t_count; ++t)
      pool.emplace_back([&, t] {
        try {
          work(n * t / t_count, n * (t + 1) / t_count);
        } catch (...) {
          failure = std::current_exception();  // not expected: encode_record reports errors as strings
        }
      });
    work(0, t_count ? n / t_count : n);
    for (auto& th : pool) th.join();
    if (failure) std::rethrow_exception(failure);

    for (size_t i = 0; i < n; ++i) {
      if (blank(lines[i])) continue;
      any_record = true;
      if (!errors[i].empty()) {
        if (!opt.skip_bad_lines)
          throw Error(source.string() + ":" + std::to_string(first_line + int64_t(i)) + ": " + errors[i]);
        ++skipped;
        continue;
      }
      const auto& ids = samples[i].ids;
      if (token_bytes == 2) {
        ids16.assign(ids.begin(), ids.end());
        write_all(out, ids16.data(), ids16.size() * 2, tmp_main);
      } else {
        ids32.assign(ids.begin(), ids.end());
        write_all(out, ids32.data(), ids32.size() * 4, tmp_main);
      }
      if (sft) write_all(mask, samples[i].mask.data(), samples[i].mask.size(), tmp_mask);
      n_tokens += ids.size();
      pos += ids.size() * token_bytes;
      ++n_samples;
      write_all(index, &n_tokens, sizeof n_tokens, tmp_index);
    }
  }
  if (!any_record) throw Error(source.string() + ":1: empty file (no records)");
  if (n_samples == 0)
    throw Error(source.string() + ": no valid records (" + std::to_string(skipped) + " malformed lines skipped)");
  index.close();
  if (sft) mask.close();

  auto append_file = [&](const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      const size_t got = size_t(in.gcount());
      if (got == 0) break;
      write_all(out, buf.data(), got, tmp_main);
      pos += got;
    }
  };
  h.index_offset = align64(pos);
  pad_to(out, pos, h.index_offset, tmp_main);
  append_file(tmp_index);
  if (sft) {
    h.mask_offset = align64(pos);
    pad_to(out, pos, h.mask_offset, tmp_main);
    append_file(tmp_mask);
  }
  h.n_samples = n_samples;
  h.n_tokens = n_tokens;
  h.skipped_lines = skipped;
  h.file_size = pos;
  out.seekp(0);
  write_all(out, &h, sizeof h, tmp_main);
  out.close();
  if (!out) throw Error(tmp_main.string() + ": write failed");
  std::error_code ec;
  fs::rename(tmp_main, dest, ec);
  if (ec) throw Error(dest.string() + ": cannot rename the token cache into place: " + ec.message());
}

}  // namespace

uint64_t tokenizer_hash(const tok::Tokenizer& tk) {
  const tok::BpeModel& m = tk.model();
  uint64_t h = 14695981039346656037ull;
  for (const auto& s : m.vocab) fnv_str(h, s);
  fnv_str(h, "|merges");
  for (const auto& [a, b] : m.merges) fnv_str(h, a), fnv_str(h, b);
  fnv_str(h, "|special");
  for (const auto& s : m.special) fnv_str(h, s);
  fnv_str(h, "|added");
  for (const auto& s : m.added) fnv_str(h, s);
  fnv_str(h, m.split_pattern);
  const uint8_t flags[] = {m.nfkc, m.nfc, m.add_prefix_space, m.ignore_merges};
  fnv(h, flags, sizeof flags);
  return h;
}

struct TokenDataset::Map {
  void* base = MAP_FAILED;
  size_t bytes = 0;
  CacheHeader h{};
  const uint64_t* index = nullptr;
  const unsigned char* tokens = nullptr;
  const uint8_t* mask = nullptr;
  ~Map() {
    if (base != MAP_FAILED) ::munmap(base, bytes);
  }
};

// Maps `path` and checks it against what the cache should be; returns the mapping, or null and the reason.
namespace {

std::shared_ptr<TokenDataset::Map> try_map(const fs::path& path, uint64_t tok_hash, const SourceStamp& stamp,
                                           Format format, uint32_t token_bytes, std::string& reason) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    reason = "no cache yet";
    return nullptr;
  }
  struct stat st {};
  ::fstat(fd, &st);
  auto m = std::make_shared<TokenDataset::Map>();
  m->bytes = size_t(st.st_size);
  if (m->bytes < sizeof(CacheHeader)) {
    ::close(fd);
    reason = "the cache file is truncated";
    return nullptr;
  }
  m->base = ::mmap(nullptr, m->bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m->base == MAP_FAILED) {
    reason = std::string("cannot map the cache: ") + std::strerror(errno);
    return nullptr;
  }
  std::memcpy(&m->h, m->base, sizeof(CacheHeader));
  const CacheHeader& h = m->h;
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) reason = "not a vkmind token cache (bad magic)";
  else if (h.version != kCacheVersion)
    reason = "cache version " + std::to_string(h.version) + ", expected " + std::to_string(kCacheVersion);
  else if (h.format != uint32_t(format))
    reason = std::string("the cache holds ") + format_name(Format(h.format)) + " data, expected " + format_name(format);
  else if (h.tokenizer_hash != tok_hash) reason = "it was built with another tokenizer";
  else if (h.source_size != stamp.size || h.source_mtime_ns != stamp.mtime_ns)
    reason = "the source file changed (size or modification time)";
  else if (h.token_bytes != token_bytes) reason = "unexpected token width";
  else if (h.file_size != m->bytes) reason = "the cache file is truncated";
  if (!reason.empty()) return nullptr;
  auto base = static_cast<const unsigned char*>(m->base);
  m->index = reinterpret_cast<const uint64_t*>(base + h.index_offset);
  m->tokens = base + h.tokens_offset;
  m->mask = h.mask_offset ? base + h.mask_offset : nullptr;
  return m;
}

}  // namespace

fs::path TokenDataset::cache_path_for(const fs::path& source, const CacheOptions& opt) {
  const fs::path abs = fs::absolute(source).lexically_normal();
  const fs::path dir = opt.cache_dir.empty() ? abs.parent_path() / ".vkmind-cache" : opt.cache_dir;
  uint64_t h = 14695981039346656037ull;
  fnv_str(h, abs.string());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return dir / (abs.filename().string() + "." + format_name(opt.format) + "." + std::string(hex, 8) + ".tokens");
}

TokenDataset TokenDataset::open(const fs::path& source, const tok::Tokenizer& tk, const CacheOptions& opt) {
  TokenDataset d;
  d.path_ = cache_path_for(source, opt);
  const SourceStamp stamp = stamp_of(source);
  const uint64_t th = tokenizer_hash(tk);
  const uint32_t tb = tk.vocab_size() <= 65536 ? 2 : 4;
  std::string reason;
  auto m = try_map(d.path_, th, stamp, opt.format, tb, reason);
  if (!m) {
    const bool exists = fs::exists(d.path_);
    if (exists && !opt.rebuild_stale)
      throw Error(d.path_.string() + ": stale token cache for " + source.string() + ": " + reason +
                  " (delete it or allow rebuilding)");
    std::error_code ec;
    fs::create_directories(d.path_.parent_path(), ec);
    if (ec) throw Error(d.path_.parent_path().string() + ": cannot create the cache folder: " + ec.message());
    build_cache(source, d.path_, tk, opt);
    d.built_ = true;
    d.reason_ = reason;
    std::string again;
    m = try_map(d.path_, th, stamp_of(source), opt.format, tb, again);
    if (!m) throw Error(d.path_.string() + ": the token cache just built does not open: " + again +
                        (again.find("source") != std::string::npos ? " (was the source modified while tokenizing?)" : ""));
  }
  d.map_ = std::move(m);
  return d;
}

Format TokenDataset::format() const { return Format(map_->h.format); }
size_t TokenDataset::size() const { return size_t(map_->h.n_samples); }
uint64_t TokenDataset::num_tokens() const { return map_->h.n_tokens; }
uint64_t TokenDataset::skipped_lines() const { return map_->h.skipped_lines; }
uint64_t TokenDataset::length(size_t i) const { return map_->index[i + 1] - map_->index[i]; }

void TokenDataset::read_tokens(size_t i, uint64_t begin, uint64_t n, int32_t* out) const {
  const uint64_t at = map_->index[i] + begin;
  if (map_->h.token_bytes == 2) {
    auto p = reinterpret_cast<const uint16_t*>(map_->tokens) + at;
    for (uint64_t k = 0; k < n; ++k) out[k] = int32_t(p[k]);
  } else {
    auto p = reinterpret_cast<const uint32_t*>(map_->tokens) + at;
    for (uint64_t k = 0; k < n; ++k) out[k] = int32_t(p[k]);
  }
}

std::vector<int32_t> TokenDataset::tokens(size_t i) const {
  std::vector<int32_t> v(length(i));
  read_tokens(i, 0, v.size(), v.data());
  return v;
}

std::span<const uint8_t> TokenDataset::mask(size_t i) const {
  if (!map_->mask) return {};
  return {map_->mask + map_->index[i], size_t(length(i))};
}

}  // namespace vkm::data
