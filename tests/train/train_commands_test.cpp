// `vkmind pretrain` as a user runs it: Ctrl-C writes a checkpoint and exits with 130, `--resume` finishes the
// run with exactly the losses of an uninterrupted one, and bad flags or files end in a one-line error.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// Starts vkmind with `args`, its output into `log`; returns the child's pid.
pid_t start(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(VKMIND_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    FILE* out = std::fopen(log.c_str(), "w");
    dup2(fileno(out), 1);
    dup2(fileno(out), 2);
    execv(VKMIND_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), {}};
}

// Each step's loss as metrics.jsonl wrote it (the last line of a step wins, as a resumed run repeats none).
std::map<int64_t, std::string> train_losses(const fs::path& metrics) {
  std::map<int64_t, std::string> out;
  std::ifstream f(metrics);
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["kind"] == "train") out[j["step"].get<int64_t>()] = j["loss"].dump();
  }
  return out;
}

std::vector<std::string> pretrain_args(const TempDir& d, const std::string& out) {
  model::ModelConfig c = model::preset("tiny");
  c.vocab = 1200;
  model::save_config(c, (d.path / "config.json").string());
  if (!fs::exists(d.path / "corpus.jsonl")) fs::copy_file(test::data_dir() / "corpus_sample.jsonl", d.path / "corpus.jsonl");
  return {"pretrain",  "--data",  (d.path / "corpus.jsonl").string(),
          "--tokenizer", (test::data_dir() / "tokenizer" / "trained").string(),
          "--config",  (d.path / "config.json").string(),
          "--out",     (d.path / out).string(),
          "--batch",   "2", "--seq", "32", "--steps", "12", "--eval-every", "0", "--val-fraction", "0.05",
          "--log-every", "1"};
}

TEST(TrainCommands, InterruptThenResumeMatchesAStraightRun) {
  TempDir d;
  ASSERT_EQ(wait_exit(start(pretrain_args(d, "straight"), d.path / "straight.log")), 0) << read_file(d.path / "straight.log");

  const pid_t pid = start(pretrain_args(d, "stopped"), d.path / "stopped.log");
  const fs::path metrics = d.path / "stopped" / "metrics.jsonl";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (train_losses(metrics).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid), 130) << read_file(d.path / "stopped.log");
  const std::string log = read_file(d.path / "stopped.log");
  EXPECT_NE(log.find("interrupted after step"), std::string::npos) << log;
  EXPECT_TRUE(fs::exists(d.path / "stopped" / "checkpoint" / "trainer_state.json"));
  EXPECT_FALSE(fs::exists(d.path / "stopped" / "model"));
  const size_t stopped_at = train_losses(metrics).size();
  EXPECT_LT(stopped_at, 12u) << "the run finished before the signal came; the test proves nothing";

  std::vector<std::string> resume = pretrain_args(d, "stopped");
  resume.push_back("--resume");
  ASSERT_EQ(wait_exit(start(resume, d.path / "resumed.log")), 0) << read_file(d.path / "resumed.log");
  EXPECT_EQ(train_losses(metrics), train_losses(d.path / "straight" / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(d.path / "stopped" / "model" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(d.path / "stopped" / "report.html"));
}

TEST(TrainCommands, BadInputEndsInOneClearLine) {
  TempDir d;
  std::vector<std::string> args = pretrain_args(d, "run");
  args[2] = (d.path / "missing.jsonl").string();
  EXPECT_EQ(wait_exit(start(args, d.path / "missing.log")), 1);
  EXPECT_NE(read_file(d.path / "missing.log").find("vkmind: error: " + (d.path / "missing.jsonl").string()),
            std::string::npos)
      << read_file(d.path / "missing.log");

  args = pretrain_args(d, "run");
  args.push_back("--batch");
  args.push_back("0");
  EXPECT_NE(wait_exit(start(args, d.path / "flag.log")), 0);
  EXPECT_NE(read_file(d.path / "flag.log").find("--batch"), std::string::npos) << read_file(d.path / "flag.log");
}

}  // namespace
}  // namespace vkm
