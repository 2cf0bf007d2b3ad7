// Reading a run folder back: metrics lines (cut short, repeated by a resume, unknown, mistyped), optional files
// present, absent or malformed, stage folders and their order, and the errors for what is not a run folder.
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "model/report/run.hpp"
#include "tests/report/report_support.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::report {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

std::vector<int64_t> steps_of(const std::vector<TrainRecord>& records) {
  std::vector<int64_t> steps;
  for (const auto& r : records) steps.push_back(r.step);
  return steps;
}

TEST(Metrics, KeepsTheLastLineOfEachStepAndSkipsBadLines) {
  ScratchDir dir;
  const fs::path file = dir.write("metrics.jsonl",
                                  R"({"kind":"train","step":1,"total_steps":4,"loss":9.0,"lr":1e-4,"tokens":100})"
                                  "\n"
                                  R"({"kind":"train","step":2,"loss":8.0,"future_key":[1,2]})"
                                  "\n"
                                  R"({"kind":"train","step":3,"lo)"  // a run killed while writing
                                  "\n"
                                  R"({"kind":"val","step":2,"tokens":200,"loss":8.5,"ppl":4914.8})"
                                  "\n"
                                  R"({"kind":"train","step":2,"loss":7.5,"tokens":200})"  // resumed from step 1
                                  "\n"
                                  R"({"kind":"sample","step":2,"text":"hi"})"
                                  "\n\n"
                                  R"({"kind":"train","step":3,"loss":null,"grad_norm":1.5})"
                                  "\n"
                                  R"({"kind":"train","step":4,"loss":"6.0"})"
                                  "\n"
                                  R"({"kind":"train","loss":6.0})"
                                  "\n"
                                  R"({"step":5,"loss":6.0})"
                                  "\n"
                                  R"([1,2,3])");
  std::vector<std::string> warnings;
  const Metrics m = read_metrics(file, warnings);
  EXPECT_EQ(steps_of(m.train), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(m.train[0].total_steps, 4);
  EXPECT_EQ(m.train[0].lr, 1e-4);
  EXPECT_EQ(m.train[1].loss, 7.5);     // the resumed run's line
  EXPECT_EQ(m.train[1].tokens, 200);
  EXPECT_TRUE(std::isnan(m.train[1].lr));  // absent
  EXPECT_TRUE(std::isnan(m.train[2].loss));  // null: a diverged loss
  EXPECT_EQ(m.train[2].grad_norm, 1.5);
  ASSERT_EQ(m.val.size(), 1u);
  EXPECT_EQ(m.val[0].ppl, 4914.8);
  EXPECT_EQ(m.last_step(), 3);
  const std::string name = file.string();
  EXPECT_EQ(warnings, (std::vector<std::string>{
                          name + ":3: not valid JSON (a line cut short by a killed run?), skipped",
                          name + ":9: \"loss\" is not a number, skipped",
                          name + ":10: no integer \"step\", skipped",
                          name + ":11: no \"kind\", skipped",
                          name + ":12: not a JSON object, skipped",
                      }));
}

TEST(Metrics, AnEmptyFileIsARunThatHasNotLoggedYet) {
  ScratchDir dir;
  std::vector<std::string> warnings;
  const Metrics m = read_metrics(dir.write("metrics.jsonl", ""), warnings);
  EXPECT_TRUE(m.train.empty());
  EXPECT_TRUE(m.val.empty());
  EXPECT_EQ(m.last_step(), 0);
  EXPECT_TRUE(warnings.empty());
}

TEST(Metrics, ManyBadLinesGiveACount) {
  ScratchDir dir;
  std::string text;
  for (int i = 0; i < 30; ++i) text += "garbage\n";
  std::vector<std::string> warnings;
  const Metrics m = read_metrics(dir.write("metrics.jsonl", text), warnings);
  EXPECT_TRUE(m.train.empty());
  ASSERT_EQ(warnings.size(), 21u);
  EXPECT_NE(warnings.back().find("metrics.jsonl: 10 more lines skipped"), std::string::npos) << warnings.back();
}

TEST(Run, FindsStagesInOrderOfTheirFirstMetric) {
  ScratchDir dir;
  // Named against their order, so that only the times can sort them.
  dir.write("a_sft/metrics.jsonl", R"({"kind":"train","step":1,"loss":3,"time":1700000200})" "\n");
  dir.write("a_sft/run.json", R"({"command":"sft","device":"llvmpipe"})");
  dir.write("b_pretrain/metrics.jsonl", R"({"kind":"train","step":1,"loss":9,"time":1700000100})" "\n");
  dir.write("b_pretrain/checkpoint/state.json", "{}");  // two levels down: not looked at
  dir.write("tokenizer/tokenizer_stats.json", R"({"vocab":6400,"merges":6141,"bytes_per_token":3.9})");
  dir.write("samples.jsonl", R"({"prompt":"hi","answer":"hello"})" "\n");
  fs::create_directories(dir.path() / "model");  // nothing of a run in it
  // The folders without "time" are placed by their files' modification times: before the stages.
  for (const char* f : {"tokenizer/tokenizer_stats.json", "samples.jsonl"})
    fs::last_write_time(dir.path() / f, fs::file_time_type::clock::now() - std::chrono::hours(24 * 365 * 60));

  const report::Run run = load_run(dir.path());
  EXPECT_TRUE(run.warnings.empty());
  std::vector<std::string> names;
  for (const Folder& f : run.folders) names.push_back(f.name);
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(names.begin() + 2, names.end()),
            (std::vector<std::string>{"b_pretrain", "a_sft"}));
  const auto stages = run.stages();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0]->metrics.train.at(0).loss, 9);
  EXPECT_EQ(stages[1]->info["command"], "sft");
  EXPECT_TRUE(stages[0]->info.is_null());
  for (const Folder& f : run.folders) {
    if (f.name == "tokenizer") {
      EXPECT_EQ(f.tokenizer_stats["vocab"], 6400);
    } else if (f.dir == dir.path()) {
      EXPECT_EQ(f.samples.at(0)["answer"], "hello");
    }
  }
}

TEST(Run, MalformedOptionalFilesAreWarnings) {
  ScratchDir dir;
  dir.write("metrics.jsonl", R"({"kind":"train","step":1,"loss":3})" "\n");
  dir.write("run.json", R"({"command":"pretrain",)");
  dir.write("tokenizer_stats.json", "[1, 2]");
  dir.write("samples.jsonl", "{\"prompt\":\"a\",\"answer\":\"b\"}\nnot json\n");
  const report::Run run = load_run(dir.path());
  ASSERT_EQ(run.folders.size(), 1u);
  const Folder& f = run.folders[0];
  EXPECT_TRUE(f.stage);
  EXPECT_TRUE(f.info.is_null());
  EXPECT_TRUE(f.tokenizer_stats.is_null());
  EXPECT_EQ(f.samples.size(), 1u);
  ASSERT_EQ(run.warnings.size(), 3u);
  EXPECT_NE(run.warnings[0].find("run.json: not a JSON object, ignored"), std::string::npos);
  EXPECT_NE(run.warnings[1].find("tokenizer_stats.json: not a JSON object, ignored"), std::string::npos);
  EXPECT_NE(run.warnings[2].find("samples.jsonl:2: not valid JSON"), std::string::npos);
}

TEST(Run, WhatIsNotARunFolderIsAnError) {
  ScratchDir dir;
  vkm::test::expect_error((dir.path() / "missing").string() + ": no such run folder",
                          [&] { load_run(dir.path() / "missing"); });
  const fs::path file = dir.write("notes.txt", "hello");
  vkm::test::expect_error(file.string() + ": no such run folder (not a directory)", [&] { load_run(file); });
  vkm::test::expect_error(dir.path().string() + ": not a run folder", [&] { load_run(dir.path()); });
  fs::create_directories(dir.path() / "metrics.jsonl");  // there, but not a file that can be read
  vkm::test::expect_error((dir.path() / "metrics.jsonl").string() + ": cannot read",
                          [&] { load_run(dir.path()); });
}

}  // namespace
}  // namespace vkm::report
