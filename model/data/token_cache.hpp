#pragma once
// A JSONL data set tokenized once into a binary cache file, then memory-mapped.
//
// Building streams the JSONL in chunks of whole lines (chunk_bytes, by default 4 MiB; a longer line grows
// the chunk to hold it), encodes each chunk's lines on all cores, and appends the results to the cache
// (tokens) and two side files (index, mask) that are joined at the end: memory stays bounded by one chunk
// and its tokens, whatever the size of the data set. The file is written under a temporary name and
// renamed into place, so a cache is either complete or absent.
//
// File layout (little-endian, every section 64-byte aligned):
//   CacheHeader (magic "VKMTOKC1", version, format, bytes per token, tokenizer hash, source size and
//                mtime in ns, counts, section offsets, total file size)
//   index   : (n_samples + 1) x uint64 token offsets; sample i is tokens [index[i], index[i+1])
//   tokens  : n_tokens x uint16 (vocab <= 65536) or uint32
//   mask    : SFT only, n_tokens x uint8 (0/1), parallel to tokens
// A cache whose header does not match (another version, format, tokenizer, or a source file whose size or
// mtime changed) is rebuilt, or refused with the reason when CacheOptions::rebuild_stale is false.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/data/dataset.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::data {

inline constexpr uint32_t kCacheVersion = 1;

struct CacheOptions {
  Format format = Format::pretrain;
  std::filesystem::path cache_dir;  // empty: "<source's folder>/.vkmind-cache"
  bool skip_bad_lines = false;      // count and skip malformed lines instead of stopping at the first
  bool rebuild_stale = true;        // false: a stale or foreign cache is an error instead of being rebuilt
  int threads = 0;                  // 0: all cores
  size_t chunk_bytes = size_t(4) << 20;
};

// FNV-1a over everything that decides how text becomes ids (vocabulary, merges, specials, normalizers,
// split pattern, flags).
uint64_t tokenizer_hash(const tok::Tokenizer& tokenizer);

class TokenDataset {
 public:
  // Opens the cache of `source`, building it first when it is missing or stale. Throws vkm::Error:
  // "FILE:LINE: what" for a malformed line (unless skip_bad_lines), "FILE:1: empty file" for a file with no
  // records, or the reason a stale cache is refused.
  static TokenDataset open(const std::filesystem::path& source, const tok::Tokenizer& tokenizer,
                           const CacheOptions& options = {});
  // Where the cache of `source` lives under `options`.
  static std::filesystem::path cache_path_for(const std::filesystem::path& source, const CacheOptions& options);

  Format format() const;
  size_t size() const;            // samples
  uint64_t num_tokens() const;    // over all samples
  uint64_t length(size_t i) const;
  // Tokens [begin, begin + n) of sample i, as int32.
  void read_tokens(size_t i, uint64_t begin, uint64_t n, int32_t* out) const;
  std::vector<int32_t> tokens(size_t i) const;
  // SFT: sample i's loss mask (0/1 per token), mapped; pretrain: empty.
  std::span<const uint8_t> mask(size_t i) const;

  bool built() const { return built_; }                       // tokenized by this open()
  const std::string& rebuild_reason() const { return reason_; }  // why it was (re)built
  uint64_t skipped_lines() const;                              // malformed lines skipped when building
  const std::filesystem::path& cache_path() const { return path_; }

  struct Map;  // the mapped file (implementation detail)

 private:
  std::shared_ptr<const Map> map_;
  std::filesystem::path path_;
  bool built_ = false;
  std::string reason_;
};

}  // namespace vkm::data
