// The byte-level pre-tokenizer, matching Hugging Face tokenizers (Rust, Oniguruma regex) split for split.
//
// Whitespace: tokenizers' `\s` is Oniguruma's, i.e. Unicode White_Space (U+0009-000D, 0020, 0085, 00A0, 1680,
// 2000-200A, 2028, 2029, 202F, 205F, 3000). PCRE2's `\s` under UCP adds U+180E, so patterns are rewritten to
// spell the White_Space set out before compiling. `\p{L}` and `\p{N}` are PCRE2's (Unicode 14 in Debian 12).
//
// Invalid UTF-8: tokenizers only ever sees valid strings (Rust &str, Python str); bytes reach it through
// String::from_utf8_lossy, which replaces each maximal subpart of an ill-formed sequence (Unicode §3.9) by
// one U+FFFD. We split exactly that lossy string, then hand back the original bytes each piece covers, so the
// pieces are the ones tokenizers would form around the U+FFFDs while the bytes themselves survive (and
// byte-level BPE encodes them as byte tokens: any byte string round-trips).
#include "model/tokenizer/pretokenize.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <vector>

#include "engine/error.hpp"
#include "model/tokenizer/utf8.hpp"

namespace vkm::tok {
namespace {

// The stand-ins are all below U+0800: one or two bytes.
void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 get U+0100.. in order.
struct ByteAlphabet {
  std::array<std::string, 256> to;  // byte -> UTF-8 of its stand-in
  std::array<int16_t, 324> from;    // stand-in code point -> byte, -1 if none
  ByteAlphabet() {
    from.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? b : next++;
      append_utf8(to[b], cp);
      from[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

// Oniguruma's Unicode White_Space, to stand in for `\s` (see the top of the file).
constexpr std::string_view kWhiteSpace =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

std::string spell_out_whitespace(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S') {
        if (in_class) throw Error("pre-tokenizer regex: \\S inside a character class is not supported");
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += e;
      }
    } else if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ] is literal
    } else if (c == '[' && in_class && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t end = p.find(":]", i + 2);  // a POSIX class such as [:alpha:] inside a class
      if (end == std::string_view::npos) throw Error("pre-tokenizer regex: unterminated [: in a class");
      out += p.substr(i, end + 2 - i);
      i = end + 1;
    } else {
      if (c == ']') in_class = false;
      out += c;
    }
  }
  return out;
}

// Per thread: PCRE2 match data, and a JIT stack large enough for long runs of one class.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// ---- The ByteLevel regex without PCRE2 ----
//
// kByteLevelPattern, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+, matches at
// every position (each character is a letter, a number, white space or something else), so it splits text into
// consecutive pieces that a hand-written scanner finds directly: a contraction; else an optional space and a
// maximal run of one class (letters, numbers or other); else a run of white space, less its last character when
// something other than white space follows and the run holds more than one character (the backtracking of
// \s+(?!\S)). Letters and numbers are PCRE2's own \p{L} and \p{N}, asked once per code point and remembered,
// so the split is PCRE2's exactly; white space is the spelled-out set above. An ill-formed subpart is one
// U+FFFD (class other), as in the lossy string the PCRE2 path splits.

enum CharClass : uint8_t { kUnknown = 0, kLetter, kNumber, kSpace, kOther };

constexpr std::array<uint8_t, 128> ascii_classes() {
  std::array<uint8_t, 128> t{};
  for (int c = 0; c < 128; ++c) {
    t[size_t(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ? kLetter
                   : c >= '0' && c <= '9'                            ? kNumber
                   : (c >= 9 && c <= 13) || c == ' '                 ? kSpace
                                                                     : kOther;
  }
  return t;
}
constexpr std::array<uint8_t, 128> kAsciiClass = ascii_classes();

bool unicode_white_space(uint32_t cp) {
  return (cp >= 9 && cp <= 13) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// PCRE2's verdict on one code point, asked the first time it is seen (races only repeat the same answer).
class UnicodeClasses {
 public:
  UnicodeClasses() {
    const std::string_view pattern = R"((\p{L})|(\p{N}))";
    int err;
    PCRE2_SIZE at;
    re_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &at, nullptr);
    if (!re_) throw Error("pre-tokenizer: cannot compile the class probe: " + pcre2_message(err));
  }
  ~UnicodeClasses() { pcre2_code_free(re_); }

  uint8_t of(uint32_t cp) const {
    const uint8_t known = table_[cp].load(std::memory_order_relaxed);
    return known != kUnknown ? known : ask(cp);
  }

 private:
  uint8_t ask(uint32_t cp) const {
    uint8_t c = kOther;
    if (unicode_white_space(cp)) {
      c = kSpace;
    } else {
      char buf[4];
      size_t n;
      if (cp < 0x800) {
        buf[0] = char(0xC0 | (cp >> 6)), buf[1] = char(0x80 | (cp & 0x3F)), n = 2;
      } else if (cp < 0x10000) {
        buf[0] = char(0xE0 | (cp >> 12)), buf[1] = char(0x80 | ((cp >> 6) & 0x3F)), buf[2] = char(0x80 | (cp & 0x3F));
        n = 3;
      } else {
        buf[0] = char(0xF0 | (cp >> 18)), buf[1] = char(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = char(0x80 | ((cp >> 6) & 0x3F)), buf[3] = char(0x80 | (cp & 0x3F));
        n = 4;
      }
      thread_local pcre2_match_data* data = pcre2_match_data_create(3, nullptr);  // one per thread, kept
      const int rc = pcre2_match(re_, reinterpret_cast<PCRE2_SPTR>(buf), n, 0, PCRE2_NO_UTF_CHECK, data, nullptr);
      if (rc == 2) c = kLetter;
      else if (rc == 3) c = kNumber;
      else if (rc != PCRE2_ERROR_NOMATCH) throw Error("pre-tokenizer: class probe failed: " + pcre2_message(rc));
    }
    table_[cp].store(c, std::memory_order_relaxed);
    return c;
  }

  pcre2_code* re_ = nullptr;
  mutable std::unique_ptr<std::atomic<uint8_t>[]> table_{new std::atomic<uint8_t>[0x110000]()};
};

const UnicodeClasses& unicode_classes() {
  static const UnicodeClasses c;
  return c;
}

// The class and byte length of the character at s[i] (an ill-formed subpart: other, its length).
struct CharAt {
  uint8_t cls;
  uint8_t len;
};
inline CharAt char_at(std::string_view s, size_t i, const UnicodeClasses& classes) {
  const unsigned c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return {kAsciiClass[c], 1};
  size_t subpart;
  const size_t n = utf8_char(s, i, &subpart);
  if (n == 0) return {kOther, uint8_t(subpart)};
  uint32_t cp;
  if (n == 2) cp = (c & 0x1Fu) << 6 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
  else if (n == 3) cp = (c & 0x0Fu) << 12 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6 | (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
  else cp = (c & 0x07u) << 18 | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12 |
            (static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6 | (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
  return {classes.of(cp), uint8_t(n)};
}

// Where the piece starting at s[pos] ends.
size_t byte_level_piece_end(std::string_view s, size_t pos, const UnicodeClasses& classes) {
  const size_t n = s.size();
  const char c = s[pos];
  if (c == '\'' && pos + 1 < n) {
    const char c1 = s[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
    if (pos + 2 < n) {
      const char c2 = s[pos + 2];
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return pos + 3;
    }
  }
  const CharAt first = char_at(s, pos, classes);
  size_t i = pos;
  uint8_t run = first.cls;
  if (c == ' ' && pos + 1 < n) {  // " ?X+": the space joins a run of letters, numbers or others after it
    const CharAt next = char_at(s, pos + 1, classes);
    if (next.cls != kSpace) run = next.cls, i = pos + 1;
  }
  if (run != kSpace) {
    while (i < n) {
      const CharAt ch = char_at(s, i, classes);
      if (ch.cls != run) break;
      i += ch.len;
    }
    return i;
  }
  size_t last = pos;  // the start of the run's last character
  while (i < n) {
    const CharAt ch = char_at(s, i, classes);
    if (ch.cls != kSpace) break;
    last = i;
    i += ch.len;
  }
  if (i == n || last == pos) return i;  // \s+(?!\S) at the end, or a lone \s+
  return last;                          // \s+(?!\S): all but the last, which stays for the next piece
}

}  // namespace

struct Pretokenizer::Code {
  pcre2_code* re = nullptr;
  ~Code() { pcre2_code_free(re); }
};

Pretokenizer::Pretokenizer(std::string_view pattern) : pattern_(pattern) {
  const std::string spelled = spell_out_whitespace(pattern);
  int err;
  PCRE2_SIZE at;
  auto code = std::make_shared<Code>();
  code->re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(spelled.data()), spelled.size(), PCRE2_UTF | PCRE2_UCP,
                           &err, &at, nullptr);
  if (!code->re) {
    throw Error("pre-tokenizer regex " + std::string(pattern) + ": " + pcre2_message(err) + " (at offset " +
                std::to_string(at) + " of the PCRE2 form " + spelled + ")");
  }
  pcre2_jit_compile(code->re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where JIT is missing
  code_ = std::move(code);
  byte_level_ = pattern == kByteLevelPattern;
}

void Pretokenizer::split(std::string_view text, const std::function<void(std::string_view)>& piece) const {
  if (byte_level_) {
    const UnicodeClasses& classes = unicode_classes();
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = byte_level_piece_end(text, pos, classes);
      piece(text.substr(pos, end - pos));
      pos = end;
    }
    return;
  }
  // Invalid UTF-8 is split as its lossy form; origin maps lossy offsets back to `text`.
  std::string lossy;
  std::vector<size_t> origin;
  std::string_view subject = text;
  if (!valid_utf8(text)) {
    for (size_t i = 0; i < text.size();) {
      size_t subpart;
      const size_t n = utf8_char(text, i, &subpart);
      const size_t len = n ? n : subpart;
      if (n) lossy.append(text.substr(i, n));
      else lossy += "\xEF\xBF\xBD";
      origin.resize(lossy.size(), i);
      i += len;
    }
    origin.push_back(text.size());
    subject = lossy;
  }
  auto emit = [&](size_t a, size_t b) {
    if (origin.empty()) piece(text.substr(a, b - a));
    else piece(text.substr(origin[a], origin[b] - origin[a]));
  };

  thread_local MatchState state;
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t pos = 0, gap = 0;
  while (pos < subject.size()) {
    const int rc = pcre2_match(code_->re, s, subject.size(), pos, PCRE2_NO_UTF_CHECK, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("pre-tokenizer regex " + pattern_ + ": " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    const size_t a = ov[0], b = ov[1];
    if (b == a) {  // an empty match forms no piece; step over one character
      size_t subpart;
      pos = a + utf8_char(subject, a, &subpart);
      continue;
    }
    if (a > gap) emit(gap, a);
    emit(a, b);
    gap = pos = b;
  }
  if (gap < subject.size()) emit(gap, subject.size());
}

void pretokenize(std::string_view text, const std::function<void(std::string_view)>& piece) {
  static const Pretokenizer byte_level;
  byte_level.split(text, piece);
}

std::string to_byte_level(std::string_view bytes) {
  const auto& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += a.to[b];
  return out;
}

std::string from_byte_level(std::string_view token) {
  const auto& a = alphabet();
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    size_t subpart;
    const size_t n = utf8_char(token, i, &subpart);
    uint32_t cp = 0xFFFFFFFF;
    if (n == 1) cp = static_cast<unsigned char>(token[i]);
    if (n == 2) cp = (static_cast<unsigned char>(token[i]) & 0x1F) << 6 | (static_cast<unsigned char>(token[i + 1]) & 0x3F);
    if (cp >= a.from.size() || a.from[cp] < 0) {
      throw Error("byte-level token \"" + std::string(token) + "\" holds a character outside GPT-2's byte alphabet");
    }
    out += static_cast<char>(a.from[cp]);
    i += n;
  }
  return out;
}

namespace {

// utf8proc rejects ill-formed input, so only the valid runs are normalized; invalid bytes stay as they are.
std::string normalize(std::string_view text, utf8proc_option_t options) {
  std::string out;
  auto flush = [&](std::string_view run) {
    if (run.empty()) return;
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                                            static_cast<utf8proc_ssize_t>(run.size()), &mapped, options);
    if (n < 0) throw Error(std::string("Unicode normalization: ") + utf8proc_errmsg(n));
    out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
    std::free(mapped);
  };
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    size_t subpart;
    const size_t n = utf8_char(text, i, &subpart);
    if (n) { i += n; continue; }
    flush(text.substr(start, i - start));
    out.append(text.substr(i, subpart));
    start = i += subpart;
  }
  flush(text.substr(start));
  return out;
}

}  // namespace

std::string nfkc(std::string_view text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
}

std::string nfc(std::string_view text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
}

}  // namespace vkm::tok
