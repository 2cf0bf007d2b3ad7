#include "model/report/run.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "engine/error.hpp"

namespace vkm::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kWarningsPerFile = 20;  // a file of garbage gives a count, not thousands of lines

std::optional<std::string> read_text(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return std::nullopt;
  return text.str();
}

// Collects a file's line warnings, at most kWarningsPerFile of them and then a count of the rest.
class LineWarnings {
 public:
  LineWarnings(const fs::path& file, std::vector<std::string>& out) : file_(file.string()), out_(out) {}
  ~LineWarnings() {
    if (count_ > kWarningsPerFile)
      out_.push_back(file_ + ": " + std::to_string(count_ - kWarningsPerFile) + " more lines skipped");
  }
  void add(size_t line, const std::string& why) {
    if (++count_ <= kWarningsPerFile) out_.push_back(file_ + ":" + std::to_string(line) + ": " + why + ", skipped");
  }

 private:
  std::string file_;
  std::vector<std::string>& out_;
  int count_ = 0;
};

// Calls f(line number, parsed JSON) for each non-blank line; lines that are not JSON objects are warned about.
template <class F>
void for_each_object(const std::string& text, LineWarnings& warnings, F&& f) {
  std::istringstream in(text);
  size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded())
      warnings.add(number, "not valid JSON (a line cut short by a killed run?)");
    else if (!j.is_object())
      warnings.add(number, "not a JSON object");
    else
      f(number, j);
  }
}

template <class Record>
struct Field {
  const char* key;
  double Record::*member;
};
constexpr Field<TrainRecord> kTrainFields[] = {
    {"total_steps", &TrainRecord::total_steps}, {"epoch", &TrainRecord::epoch},
    {"tokens", &TrainRecord::tokens},           {"loss", &TrainRecord::loss},
    {"lr", &TrainRecord::lr},                   {"grad_norm", &TrainRecord::grad_norm},
    {"tokens_per_s", &TrainRecord::tokens_per_s}, {"elapsed_s", &TrainRecord::elapsed_s}};
constexpr Field<ValRecord> kValFields[] = {
    {"tokens", &ValRecord::tokens}, {"loss", &ValRecord::loss}, {"ppl", &ValRecord::ppl}};

// Sets the record's step and the fields the line has; returns what is wrong with the line, or "".
template <class Record, size_t N>
std::string read_record(const json& j, const Field<Record> (&fields)[N], Record& r) {
  const auto step = j.find("step");
  if (step == j.end() || !step->is_number() || step->get<double>() != std::floor(step->get<double>()))
    return "no integer \"step\"";
  r.step = int64_t(step->get<double>());
  for (const auto& f : fields) {
    const auto it = j.find(f.key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_number()) return std::string("\"") + f.key + "\" is not a number";
    r.*f.member = it->template get<double>();
  }
  return "";
}

template <class Record>
std::vector<Record> values_of(const std::map<int64_t, Record>& by_step) {
  std::vector<Record> out;
  for (const auto& [step, r] : by_step) out.push_back(r);
  return out;
}

// Optional JSON object files: problems are warnings, and the file counts as absent.
json read_object_file(const fs::path& file, std::vector<std::string>& warnings) {
  const auto text = read_text(file);
  if (!text) {
    warnings.push_back(file.string() + ": cannot be read, ignored");
    return nullptr;
  }
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) {
    warnings.push_back(file.string() + ": not a JSON object, ignored");
    return nullptr;
  }
  return j;
}

std::vector<json> read_samples(const fs::path& file, std::vector<std::string>& warnings) {
  const auto text = read_text(file);
  if (!text) {
    warnings.push_back(file.string() + ": cannot be read, ignored");
    return {};
  }
  std::vector<json> samples;
  LineWarnings line_warnings(file, warnings);
  for_each_object(*text, line_warnings, [&](size_t, const json& j) { samples.push_back(j); });
  return samples;
}

double modified_unix_seconds(const fs::path& file) {
  std::error_code ec;
  const auto t = fs::last_write_time(file, ec);
  if (ec) return 0;
  return std::chrono::duration<double>(std::chrono::file_clock::to_sys(t).time_since_epoch()).count();
}

std::string folder_name(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "run/" normalizes to "run/" with an empty filename
  return p.filename().string();
}

// A folder's files, or nothing when it holds none of them.
std::optional<Folder> read_folder(const fs::path& dir, std::vector<std::string>& warnings) {
  Folder f;
  f.dir = dir;
  f.name = folder_name(dir);
  double earliest = INFINITY;
  auto present = [&](const char* name) {
    std::error_code ec;
    if (!fs::exists(dir / name, ec)) return false;
    earliest = std::min(earliest, modified_unix_seconds(dir / name));
    return true;
  };
  if (present("metrics.jsonl")) {
    f.stage = true;
    f.metrics = read_metrics(dir / "metrics.jsonl", warnings);
  }
  if (present("run.json")) {
    f.stage = true;
    f.info = read_object_file(dir / "run.json", warnings);
  }
  if (present("tokenizer_stats.json")) f.tokenizer_stats = read_object_file(dir / "tokenizer_stats.json", warnings);
  if (present("samples.jsonl")) f.samples = read_samples(dir / "samples.jsonl", warnings);
  if (!std::isfinite(earliest)) return std::nullopt;
  f.start_time = std::isfinite(f.metrics.first_time) ? f.metrics.first_time : earliest;
  return f;
}

}  // namespace

int64_t Metrics::last_step() const {
  int64_t last = 0;
  if (!train.empty()) last = train.back().step;
  if (!val.empty()) last = std::max(last, val.back().step);
  return last;
}

Metrics read_metrics(const fs::path& file, std::vector<std::string>& warnings) {
  const auto text = read_text(file);
  if (!text) throw Error(file.string() + ": cannot read the run's metrics");
  std::map<int64_t, TrainRecord> train;  // by step: a resumed run's repeated step replaces the earlier line
  std::map<int64_t, ValRecord> val;
  Metrics m;
  LineWarnings line_warnings(file, warnings);
  for_each_object(*text, line_warnings, [&](size_t line, const json& j) {
    const auto kind = j.find("kind");
    if (kind == j.end() || !kind->is_string()) return line_warnings.add(line, "no \"kind\"");
    std::string why;
    if (*kind == "train") {
      TrainRecord r;
      if ((why = read_record(j, kTrainFields, r)).empty()) train[r.step] = r;
    } else if (*kind == "val") {
      ValRecord r;
      if ((why = read_record(j, kValFields, r)).empty()) val[r.step] = r;
    }
    if (!why.empty()) return line_warnings.add(line, why);
    const auto time = j.find("time");
    if (std::isnan(m.first_time) && time != j.end() && time->is_number()) m.first_time = time->get<double>();
  });
  m.train = values_of(train);
  m.val = values_of(val);
  return m;
}

std::vector<const Folder*> Run::stages() const {
  std::vector<const Folder*> out;
  for (const Folder& f : folders)
    if (f.stage) out.push_back(&f);
  return out;
}

Run load_run(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(dir.string() + ": no such run folder" + (fs::exists(dir, ec) ? " (not a directory)" : ""));
  Run run;
  run.dir = dir;
  run.name = folder_name(dir);
  std::vector<fs::path> candidates{dir};
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec))
    if (std::error_code e; it->is_directory(e)) candidates.push_back(it->path());
  if (ec) throw Error(dir.string() + ": cannot list the run folder (" + ec.message() + ")");
  for (const fs::path& p : candidates)
    if (auto f = read_folder(p, run.warnings)) run.folders.push_back(std::move(*f));
  if (run.folders.empty())
    throw Error(dir.string() +
                ": not a run folder (no metrics.jsonl, run.json, tokenizer_stats.json or samples.jsonl in it or in a "
                "folder inside it)");
  std::sort(run.folders.begin(), run.folders.end(), [](const Folder& a, const Folder& b) {
    return a.start_time != b.start_time ? a.start_time < b.start_time : a.name < b.name;
  });
  return run;
}

}  // namespace vkm::report
