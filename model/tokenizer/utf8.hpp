#pragma once
// UTF-8 well-formedness as Unicode §3.9 defines it, shared by the pre-tokenizer and the decoders.
#include <cstddef>
#include <string_view>

namespace vkm::tok {

// Length of the well-formed UTF-8 character at s[i], or 0 when there is none; then *subpart is the length
// of its maximal subpart (what one U+FFFD replaces in a lossy conversion), at least 1. A subpart that runs
// into the end of `s` may be the start of a character cut short.
inline size_t utf8_char(std::string_view s, size_t i, size_t* subpart) {
  const unsigned c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t need;
  unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte; later bytes are always 80..BF
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *subpart = 1;
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) { *subpart = k; return 0; }
    const unsigned d = static_cast<unsigned char>(s[i + k]);
    if (d < lo || d > hi) { *subpart = k; return 0; }
    lo = 0x80, hi = 0xBF;
  }
  return need + 1;
}

inline bool valid_utf8(std::string_view s) {
  size_t subpart;
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) { ++i; continue; }  // ASCII runs dominate; skip the decode
    const size_t n = utf8_char(s, i, &subpart);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

}  // namespace vkm::tok
