// tools/pipeline.sh's logic, run against a stand-in for vkmind that logs its arguments and writes what each
// command would (so the test takes seconds, not the minutes of real training): stages in order, skipped when
// complete, resumed after Ctrl-C, rerun when an input changed or on --redo, the plan kept across runs and the
// budget turned into steps, the device choosing the model, the summary, and the errors. Every flag the script
// passes is checked against the real binary's --help, so the script cannot drift from the commands.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

const fs::path kRepo = test::data_dir().parent_path().parent_path();

// The stand-in: each call appends its arguments (one JSON array per line) to $STUB_LOG. Training commands log
// --steps steps of 0.5 s each; $STUB_STOP=STAGE makes the run in RUN/STAGE stop at a checkpoint with status 130,
// as after Ctrl-C, unless resumed.
const char* kStub = R"(#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
def flag(name):
    return args[args.index(name) + 1]
def touch(path, text="{}"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(text)
cmd = args[0]
if cmd == "devices":
    print(json.dumps([{"name": "other", "type": "cpu", "selected": False},
                      {"name": "stub", "type": os.environ.get("STUB_DEVICE", "cpu"), "selected": True}]))
elif cmd == "train-tokenizer":
    touch(flag("--out") + "/tokenizer.json")
    print(f"trained {flag('--vocab')} tokens (765 merges) in 0.5 s; wrote {flag('--out')}/tokenizer.json")
elif cmd in ("pretrain", "sft"):
    out = flag("--out")
    print("data: 3 samples, 40 tokens; 3 for training; ...")
    touch(out + "/run.json")
    with open(out + "/metrics.jsonl", "a") as m:
        for step in range(1, int(flag("--steps")) + 1):
            m.write(json.dumps({"kind": "train", "step": step, "elapsed_s": 0.5 * step}) + "\n")
    if os.environ.get("STUB_STOP") == os.path.basename(out) and "--resume" not in args:
        touch(out + "/checkpoint/trainer_state.json")
        sys.exit(130)
    touch(out + "/model/model.safetensors")
elif cmd == "generate":
    with open(flag("--out"), "w") as out:
        for n, line in enumerate(open(flag("--prompts")), 1):
            out.write(json.dumps({"line": n, "prompt": json.loads(line)["text"], "response": f"answer {n}"}) + "\n")
elif cmd == "report":
    touch(args[1] + "/report.html", "<html>")
)";

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), {}};
}

class Pipeline : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path out = dir.path / "run", data = dir.path / "data", stub = dir.path / "vkmind", log = dir.path / "calls.jsonl";
  std::map<std::string, std::string> env;
  fs::path cwd = fs::current_path();

  void SetUp() override {
    dir.write("vkmind", kStub);
    fs::permissions(stub, fs::perms::owner_all);
    fs::create_directories(data);
    // 2 texts of 10 bytes: the stub's 40 tokens make 0.5 bytes per token.
    dir.write("data/pretrain.jsonl", "{\"text\": \"0123456789\"}\n{\"text\": \"abcdefghij\"}\n");
    dir.write("data/pretrain_val.jsonl", "{\"text\": \"0123456789\"}\n{\"text\": \"abcdefghij\"}\n");
    const std::string conversation = R"({"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})";
    dir.write("data/sft.jsonl", conversation + "\n" + conversation + "\n" + conversation + "\n");
    dir.write("data/sft_val.jsonl", conversation + "\n");
  }

  // Runs the script with --vkmind STUB --out RUN --data DATA and `args` (given as they are without `defaults`).
  Result run(std::vector<std::string> args, bool defaults = true) {
    if (defaults)
      args.insert(args.begin(), {"--vkmind", stub.string(), "--out", out.string(), "--data", data.string()});
    std::string cmd = "cd " + quote(cwd.string()) + " && env STUB_LOG=" + quote(log.string());
    for (const auto& [k, v] : env) cmd += " " + k + "=" + quote(v);
    cmd += " bash " + quote((kRepo / "tools" / "pipeline.sh").string());
    for (const auto& a : args) cmd += " " + quote(a);
    Result r;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
    const int status = pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }

  // The stub's calls since the last look, each its argument list.
  std::vector<std::vector<std::string>> calls() {
    std::vector<std::vector<std::string>> all;
    std::ifstream f(log);
    for (std::string line; std::getline(f, line);) all.push_back(nlohmann::json::parse(line));
    fs::remove(log);
    return all;
  }
  static std::vector<std::string> commands(const std::vector<std::vector<std::string>>& calls) {
    std::vector<std::string> names;
    for (const auto& c : calls) names.push_back(c[0]);
    return names;
  }
  static std::string flag(const std::vector<std::string>& call, const std::string& name) {
    for (size_t i = 0; i + 1 < call.size(); ++i)
      if (call[i] == name) return call[i + 1];
    return "";
  }
  static bool has(const std::vector<std::string>& call, const std::string& name) {
    return std::find(call.begin(), call.end(), name) != call.end();
  }
  std::map<std::string, std::string> plan() const {
    std::map<std::string, std::string> kv;
    std::istringstream f(read_file(out / "plan.env"));
    for (std::string line; std::getline(f, line);) kv[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
    return kv;
  }
};

using Calls = std::vector<std::string>;

TEST_F(Pipeline, RunsEveryStageThenSkipsThemAll) {
  const Result r = run({"--cpu", "--budget-minutes", "10"});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto c = calls();
  // The calibration (8 steps on the held-out text), then the two training runs, samples, report.
  ASSERT_EQ(commands(c), (Calls{"train-tokenizer", "pretrain", "pretrain", "sft", "generate", "report"}));
  EXPECT_EQ(flag(c[0], "--vocab"), "2048");
  EXPECT_EQ(flag(c[1], "--data"), (data / "pretrain_val.jsonl").string());
  EXPECT_EQ(flag(c[1], "--steps"), "8");
  EXPECT_EQ(flag(c[2], "--config"), (out / "config.json").string());
  EXPECT_EQ(flag(c[2], "--tokenizer"), (out / "tokenizer").string());
  EXPECT_EQ(flag(c[3], "--from"), (out / "pretrain" / "model").string());
  EXPECT_FALSE(has(c[2], "--resume") || has(c[3], "--resume"));
  EXPECT_FALSE(fs::exists(out / "calibration"));

  // 600 s less the reserve of 15 and what the run took so far; 25% pretraining; 5 s and 8 steps of validation
  // off each; 0.5 s a step.
  const auto p = plan();
  EXPECT_EQ(p.at("device"), "cpu");
  EXPECT_EQ(p.at("step_seconds"), "0.5000");
  const int pretrain = std::stoi(p.at("pretrain_steps")), sft = std::stoi(p.at("sft_steps"));
  EXPECT_NEAR(pretrain, int((585 * 0.25 - 5) / 0.5) - 8, 2);
  EXPECT_NEAR(sft, int((585 * 0.75 - 5) / 0.5) - 8, 3);
  EXPECT_EQ(flag(c[2], "--steps"), std::to_string(pretrain));
  EXPECT_EQ(flag(c[3], "--steps"), std::to_string(sft));
  EXPECT_EQ(flag(c[2], "--eval-every"), std::to_string((pretrain + 3) / 4));
  EXPECT_EQ(p.at("save_every"), "240");  // a checkpoint every 2 minutes

  const auto stats = nlohmann::json::parse(read_file(out / "tokenizer_stats.json"));
  EXPECT_EQ(stats["vocab"], 2048);
  EXPECT_EQ(stats["merges"], 765);
  EXPECT_EQ(stats["bytes_per_token"], 0.5);

  std::ifstream samples(out / "samples.jsonl");
  std::string first;
  std::getline(samples, first);
  EXPECT_EQ(nlohmann::json::parse(first), (nlohmann::json{{"prompt", "请写一首五言绝句，题为《春晓》。"}, {"answer", "answer 1"}}));
  EXPECT_NE(r.output.find("> 请写一首五言绝句，题为《春晓》。\n  answer 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(stub.string() + " chat --model " + (out / "sft" / "model").string()), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "report.html"));

  const Result again = run({});
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(calls().empty());
  for (const char* stage : {"data", "tokenizer", "pretrain", "sft", "samples", "report"})
    EXPECT_NE(again.output.find(std::string(stage) + ": complete"), std::string::npos) << stage << "\n" << again.output;
}

TEST_F(Pipeline, AStoppedStageResumesFromItsCheckpoint) {
  env["STUB_STOP"] = "sft";
  const Result stopped = run({"--cpu"});
  EXPECT_EQ(stopped.status, 130) << stopped.output;
  EXPECT_NE(stopped.output.find("interrupted during sft. Run the same command again"), std::string::npos) << stopped.output;
  EXPECT_EQ(commands(calls()), (Calls{"train-tokenizer", "pretrain", "pretrain", "sft"}));
  const std::string planned = read_file(out / "plan.env");

  const Result resumed = run({"--cpu", "--budget-minutes", "30"});  // a new budget does not change a run under way
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("keeping the steps planned for 8 minutes"), std::string::npos) << resumed.output;
  const auto c = calls();
  ASSERT_EQ(commands(c), (Calls{"sft", "generate", "report"}));
  EXPECT_TRUE(has(c[0], "--resume"));
  EXPECT_EQ(read_file(out / "plan.env"), planned);
}

TEST_F(Pipeline, ChangedInputsAndRedoRunWhatDependsOnThem) {
  ASSERT_EQ(run({"--cpu"}).status, 0);
  calls();
  // Edited prompts: new samples and report only.
  std::ofstream(out / "prompts.jsonl", std::ios::app) << "{\"text\": \"one more\"}\n";
  ASSERT_EQ(run({}).status, 0);
  EXPECT_EQ(commands(calls()), (Calls{"generate", "report"}));

  // --redo sft: that stage from scratch and everything after it.
  const Result redo = run({"--redo", "sft"});
  ASSERT_EQ(redo.status, 0) << redo.output;
  auto c = calls();
  ASSERT_EQ(commands(c), (Calls{"sft", "generate", "report"}));
  EXPECT_FALSE(has(c[0], "--resume"));

  // New data: everything from the tokenizer on; the plan's steps stay.
  const std::string steps = plan().at("pretrain_steps");
  std::ofstream(data / "pretrain.jsonl", std::ios::app) << "{\"text\": \"klmnopqrst\"}\n";
  ASSERT_EQ(run({}).status, 0);
  c = calls();
  ASSERT_EQ(commands(c), (Calls{"train-tokenizer", "pretrain", "sft", "generate", "report"}));
  EXPECT_EQ(flag(c[1], "--steps"), steps);

  // --redo pretrain plans the steps again, with the budget given now: too small, so a warning and the least a
  // stage gets.
  const Result small = run({"--redo", "pretrain", "--budget-minutes", "0.5"});
  ASSERT_EQ(small.status, 0) << small.output;
  EXPECT_NE(small.output.find("pipeline: warning: 0.5 minutes leave"), std::string::npos) << small.output;
  c = calls();
  ASSERT_EQ(commands(c), (Calls{"pretrain", "pretrain", "sft", "generate", "report"}));
  EXPECT_EQ(plan().at("budget_minutes"), "0.5");
  EXPECT_EQ(flag(c[1], "--steps"), "10");
}

TEST_F(Pipeline, TheDeviceChoosesTheModel) {
  env["STUB_DEVICE"] = "discrete";
  const Result r = run({});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto c = calls();
  ASSERT_EQ(commands(c), (Calls{"devices", "train-tokenizer", "pretrain", "pretrain", "sft", "generate", "report"}));
  EXPECT_EQ(flag(c[1], "--vocab"), "6400");
  EXPECT_EQ(flag(c[3], "--preset"), "minimind2-small");
  EXPECT_EQ(flag(c[3], "--batch"), "16");
  EXPECT_EQ(flag(c[3], "--seq"), "512");
  // Without a budget, an epoch each: the pretraining file's 46 bytes at 0.5 bytes per token, 16 x 512 a step;
  // three conversations, 16 a step.
  EXPECT_EQ(flag(c[3], "--steps"), "1");
  EXPECT_EQ(flag(c[4], "--steps"), "1");
  EXPECT_EQ(plan().at("device"), "gpu");
  EXPECT_EQ(plan().at("budget_minutes"), "");
}

TEST_F(Pipeline, PlanOnlyPrintsTheCommands) {
  const Result r = run({"--cpu", "--plan"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(calls().empty());
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(r.output.find("$ " + stub.string() + " train-tokenizer"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--steps <timed>"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("$ " + stub.string() + " report " + out.string()), std::string::npos) << r.output;
}

TEST_F(Pipeline, RelativePathsAreTheCallersOwn) {
  cwd = dir.path;
  const Result r = run({"--vkmind", "vkmind", "--out", "run", "--data", "data", "--cpu", "--plan"}, false);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("$ " + stub.string() + " train-tokenizer --data " + (data / "pretrain.jsonl").string()),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--out " + (out / "tokenizer.tmp").string()), std::string::npos) << r.output;
}

TEST_F(Pipeline, BadInputIsAClearError) {
  auto expect_error = [&](const std::vector<std::string>& args, const std::string& text, bool defaults = true) {
    const Result r = run(args, defaults);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("pipeline: error: " + text), std::string::npos) << "expected: " << text << "\ngot: " << r.output;
  };
  expect_error({"--cpu", "--epochs", "2"}, "unknown option '--epochs'");
  expect_error({"--cpu", "--budget-minutes", "0"}, "--budget-minutes 0: expected a positive number");
  expect_error({"--cpu", "--budget-minutes", "ten"}, "--budget-minutes ten: expected a positive number");
  expect_error({"--cpu", "--redo", "finetune"}, "--redo finetune: no such stage");
  expect_error({"--cpu", "--out"}, "--out needs a value");
  expect_error({"--vkmind", (dir.path / "missing").string(), "--cpu"}, (dir.path / "missing").string() + " not found", false);

  fs::remove(data / "sft_val.jsonl");
  expect_error({"--cpu"}, data.string() + " lacks some of");
  dir.write("data/sft_val.jsonl", "");

  fs::create_directories(out);
  dir.write("run/plan.env", "device=cpu\nvocab 2048\n");
  expect_error({}, (out / "plan.env").string() + ":2: expected KEY=VALUE");
  // Values are data: this one names a data folder that does not exist, and runs nothing.
  const std::string pwned = (dir.path / "pwned").string();
  dir.write("run/plan.env", "device=cpu\ndata=$(touch " + pwned + ")\nvocab=2048\nmodel=config.json\nbatch=4\nseq=128\n"
                            "pretrain_lr=5e-3\nsft_lr=3e-3\nwarmup=10\npretrain_share=0.3\nmax_new_tokens=96\n");
  expect_error({}, "$(touch " + pwned + ") lacks some of");
  EXPECT_FALSE(fs::exists(pwned));
  dir.write("run/plan.env", "device=cpu\ncolour=blue\n");
  expect_error({}, (out / "plan.env").string() + ":2: unknown key 'colour'");
  dir.write("run/plan.env", "device=cpu\n");
  expect_error({}, (out / "plan.env").string() + ": 'data' is missing");
}

// Whether `help` (vkmind's --help) lists `flag`: preceded by a space or comma, followed by one, "=" or the line's end.
bool lists(const std::string& help, const std::string& flag) {
  for (size_t at = help.find(flag); at != std::string::npos; at = help.find(flag, at + 1)) {
    const char before = at > 0 ? help[at - 1] : ' ', after = at + flag.size() < help.size() ? help[at + flag.size()] : '\n';
    if ((before == ' ' || before == ',') && std::string(" ,=\n").find(after) != std::string::npos) return true;
  }
  return false;
}

// The flags the script gives each command are flags of the real vkmind.
TEST_F(Pipeline, EveryFlagIsAFlagOfVkmind) {
  env["STUB_STOP"] = "pretrain";
  ASSERT_EQ(run({}).status, 130);
  env.clear();
  ASSERT_EQ(run({}).status, 0);
  std::map<std::string, std::set<std::string>> used;
  for (const auto& c : calls())
    for (const auto& a : c)
      if (used[c[0]]; a.rfind("--", 0) == 0) used[c[0]].insert(a);
  ASSERT_EQ(used.size(), 6u);  // devices, train-tokenizer, pretrain, sft, generate, report
  ASSERT_TRUE(used["pretrain"].count("--resume"));
  for (const auto& [command, flags] : used) {
    const std::string help_file = (dir.path / (command + ".help")).string();
    const std::string cmd = std::string(VKMIND_BINARY) + " " + command + " --help > " + quote(help_file) + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const std::string help = read_file(help_file);
    for (const auto& f : flags) EXPECT_TRUE(lists(help, f)) << "vkmind " << command << " has no " << f << ":\n" << help;
  }
}

}  // namespace
}  // namespace vkm
