#pragma once
// What the report suites share: a scratch folder, a small XML well-formedness checker, and readers for the
// parts of an SVG the tests look at.
#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vkm::report::test {

// A fresh folder under the system's temp folder, removed with everything in it at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "vkm_report_XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to the file at `relative` (folders created) and returns its path.
  std::filesystem::path write(const std::string& relative, const std::string& text) const {
    const auto file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// What is wrong with `text` as XML (the subset the report writes: elements, quoted attributes, entities,
// comments, <!DOCTYPE ...>), or "" when it is well formed: every element closed in order, one root.
inline std::string xml_problem(std::string_view s) {
  auto is_name = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':'; };
  auto entity_ok = [&](size_t at) {
    const size_t end = s.find(';', at);
    if (end == std::string_view::npos || end - at > 8) return false;
    const std::string_view e = s.substr(at + 1, end - at - 1);
    return e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos" ||
           (e.size() > 1 && e[0] == '#' && e.find_first_not_of("0123456789", 1) == std::string_view::npos);
  };
  std::vector<std::string> open;
  int roots = 0;
  for (size_t i = 0; i < s.size();) {
    const std::string where = " at byte " + std::to_string(i);
    if (s[i] == '&' && !entity_ok(i)) return "bare &" + where;
    if (s[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i]))) return "text outside the root" + where;
      ++i;
      continue;
    }
    if (s.substr(i, 4) == "<!--" || s.substr(i, 2) == "<!" || s.substr(i, 2) == "<?") {
      const std::string_view close = s.substr(i, 4) == "<!--" ? "-->" : ">";
      const size_t end = s.find(close, i);
      if (end == std::string_view::npos) return "unterminated declaration" + where;
      i = end + close.size();
      continue;
    }
    const bool closing = s.substr(i, 2) == "</";
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < s.size() && is_name(s[j])) ++j;
    const std::string name(s.substr(name_start, j - name_start));
    if (name.empty()) return "bare <" + where;
    if (closing) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size() || s[j] != '>') return "bad closing tag </" + name + where;
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes <" + (open.empty() ? std::string("nothing") : open.back()) + ">" + where;
      open.pop_back();
      i = j + 1;
      continue;
    }
    if (open.empty() && ++roots > 1) return "a second root element <" + name + ">" + where;
    for (;;) {  // attributes
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return "unterminated <" + name + where;
      if (s.substr(j, 2) == "/>" || s[j] == '>') break;
      const size_t attr = j;
      while (j < s.size() && is_name(s[j])) ++j;
      if (j == attr || j + 1 >= s.size() || s[j] != '=' || (s[j + 1] != '"' && s[j + 1] != '\''))
        return "bad attribute in <" + name + where;
      const char quote = s[j + 1];
      const size_t end = s.find(quote, j + 2);
      if (end == std::string_view::npos) return "unterminated attribute in <" + name + where;
      for (size_t k = j + 2; k < end; ++k) {
        if (s[k] == '<') return "< inside an attribute of <" + name + where;
        if (s[k] == '&' && !entity_ok(k)) return "bare & in an attribute of <" + name + where;
      }
      j = end + 1;
    }
    if (s[j] == '>') {
      open.push_back(name);
      i = j + 1;
    } else {
      i = j + 2;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return roots == 1 ? "" : "no root element";
}

// The value of every `attribute="..."` inside elements <tag ...> of an SVG, in document order.
inline std::vector<std::string> attribute_values(const std::string& svg, const std::string& tag,
                                                 const std::string& attribute) {
  std::vector<std::string> out;
  for (size_t at = svg.find("<" + tag + " "); at != std::string::npos; at = svg.find("<" + tag + " ", at + 1)) {
    const size_t end = svg.find('>', at);
    const size_t a = svg.find(" " + attribute + "=\"", at);
    if (a == std::string::npos || a > end) continue;
    const size_t begin = a + attribute.size() + 3;
    out.push_back(svg.substr(begin, svg.find('"', begin) - begin));
  }
  return out;
}

// A polyline's points="x,y x,y ..." as numbers.
inline std::vector<std::pair<double, double>> parse_points(const std::string& points) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(points);
  for (std::string pair; in >> pair;) {
    const size_t comma = pair.find(',');
    out.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return out;
}

}  // namespace vkm::report::test
