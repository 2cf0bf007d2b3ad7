#pragma once
// Random corruption for the file readers' fuzz tests: each corrupt file must give a vkm::Error that names it,
// or parse (and then be read in full by the caller, so a bad span shows under AddressSanitizer).
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "engine/error.hpp"

namespace vkm::test {

struct FuzzCounts {
  int refused = 0, parsed = 0;
};

// `iterations` corrupt copies of `valid`, each written to a file (in /dev/shm, else in `dir`) and given to `parse`. A copy is truncated
// at a random length, or has a 64-bit field rewritten (anything, or its old value ± 8: sizes, counts and
// offsets), or 1-4 bytes overwritten; nine changes in ten fall within the first `hot` bytes, where the
// parser works.
inline FuzzCounts fuzz_file(const std::filesystem::path& dir, const std::string& valid, size_t hot, int iterations,
                            uint32_t seed, const std::function<void(const std::filesystem::path&)>& parse) {
  std::mt19937_64 rng(seed);
  auto place = [&](size_t width) {
    const size_t range = (rng() % 10 ? std::min(hot, valid.size()) : valid.size()) - width;
    return size_t(rng() % (range + 1));
  };
  FuzzCounts counts;
  // Thousands of small writes: in memory where there is a RAM disk (a disk-backed /tmp takes milliseconds each).
  const std::filesystem::path ram = "/dev/shm";
  const std::filesystem::path path =
      (std::filesystem::is_directory(ram) ? ram : dir) / ("vkm_fuzz_" + std::to_string(::getpid()));
  for (int i = 0; i < iterations; ++i) {
    std::string bytes = valid;
    switch (rng() % 4) {
      case 0:
        bytes.resize(rng() % bytes.size());
        break;
      case 1: {
        const size_t at = place(8);
        uint64_t v;
        std::memcpy(&v, &bytes[at], 8);
        v = rng() % 2 ? v + rng() % 17 - 8 : rng();
        std::memcpy(&bytes[at], &v, 8);
        break;
      }
      default:
        for (int k = 1 + int(rng() % 4); k > 0; --k) {
          const size_t at = place(1);
          bytes[at] = char(rng() % 2 ? rng() : uint64_t(uint8_t(bytes[at]) ^ (1u << (rng() % 8))));
        }
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    try {
      parse(path);
      ++counts.parsed;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      ++counts.refused;
    }
  }
  std::filesystem::remove(path);
  std::printf("%d corrupt files refused, %d still valid\n", counts.refused, counts.parsed);
  return counts;
}

}  // namespace vkm::test
