#!/usr/bin/env bash
# vkmind against PyTorch on the same model and shapes, in one run: `vkmind bench train`, `vkmind bench generate`
# and tools/bench_torch.py, then the ratios vkmind/torch for every mode, beside issue 8's targets.
#
#   tools/bench_compare.sh [--preset minimind2-small | --config config.json] [--batch 8] [--seq 512] [--steps 5]
#                          [--prompt-tokens 64] [--new-tokens 16] [--context 512]
#                          [--vkmind build/vkmind] [--python PYTHON] [--out DIR]
#
# The raw outputs stay in --out (default: a new folder under /tmp), so a number can be traced to its line.
set -euo pipefail

preset=minimind2-small config="" batch=8 seq=512 steps=5 prompt_tokens=64 new_tokens=16 context=512
vkmind=build/vkmind python="" out=""
usage() { sed -n '5,7s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  [[ $1 != -h && $1 != --help ]] || usage
  [[ $1 =~ ^--(preset|config|batch|seq|steps|prompt-tokens|new-tokens|context|vkmind|python|out)$ ]] ||
    { echo "bench_compare.sh: unknown option $1" >&2; usage; }
  [[ $# -ge 2 ]] || { echo "bench_compare.sh: $1 needs a value" >&2; usage; }
  name=${1#--}
  printf -v "${name//-/_}" '%s' "$2"  # --prompt-tokens N sets prompt_tokens
  shift 2
done
for n in batch seq steps prompt_tokens new_tokens context; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "bench_compare.sh: --${n//_/-} must be a positive integer (is '${!n}')" >&2; exit 2; }
done
[[ -x $vkmind ]] || { echo "bench_compare.sh: $vkmind is not an executable (build it, or pass --vkmind)" >&2; exit 2; }
[[ -z $config || -f $config ]] || { echo "bench_compare.sh: --config $config: no such file" >&2; exit 2; }
# pyenv's python3 may hide Debian's python3-torch: take the first that imports torch.
if [[ -z $python ]]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then python=$p; break; fi
  done
  [[ -n $python ]] || { echo "bench_compare.sh: no python3 with torch (install python3-torch, or pass --python)" >&2; exit 2; }
fi
out=${out:-$(mktemp -d /tmp/bench_compare.XXXXXX)}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)

model=(--preset "$preset")
[[ -z $config ]] || model=(--config "$config")
echo "== vkmind bench train ${model[*]} --batch $batch --seq $seq --steps $steps" >&2
"$vkmind" bench train "${model[@]}" --batch "$batch" --seq "$seq" --steps "$steps" | tee "$out/vkmind_train.txt" >&2
generate_model=(--preset "$preset")
[[ -z $config ]] || generate_model=(--config "$config")
echo "== vkmind bench generate ${generate_model[*]} --batch 1,8" >&2
"$vkmind" bench generate "${generate_model[@]}" --batch 1,8 --prompt-tokens "$prompt_tokens" --new-tokens "$new_tokens" \
  --context "$context" | tee "$out/vkmind_generate.txt" >&2
echo "== bench_torch.py ($python)" >&2
"$python" "$here/bench_torch.py" "${model[@]}" --batch "$batch" --seq "$seq" --steps "$steps" \
  --prompt-tokens "$prompt_tokens" --new-tokens "$new_tokens" --json "$out/torch.json" | tee "$out/torch.txt" >&2

# vkmind's figures as "kind mode tokens/s" lines: "train PRECISION N" from bench train's header and its
# "step ... N tokens/s" line; "decode batch B N" from bench generate's "..., batch B, prompts ..." header and the
# "decode: ..." line below it.
precision=$(sed -n 's/^bench train: .* micro-batches, \([a-z0-9]*\)[a-z ]*, on .*/\1/p' "$out/vkmind_train.txt")
sed -n "s/^step .* \([0-9.]*\) tokens\/s .*/train ${precision:-?} \1/p" "$out/vkmind_train.txt" > "$out/vkmind.txt"
awk '/ \(.* parameters\), batch [0-9]+, / { b = $0; sub(/.*, batch /, "", b); sub(/,.*/, "", b) }
     /^  decode: / { t = $0; sub(/ tokens\/s.*/, "", t); sub(/.* /, "", t); print "decode batch", b, t }' \
  "$out/vkmind_generate.txt" >> "$out/vkmind.txt"
grep -q '^train ' "$out/vkmind.txt" ||
  { echo "bench_compare.sh: no 'step ... tokens/s' line in $out/vkmind_train.txt" >&2; exit 1; }
[[ $(grep -c '^decode batch ' "$out/vkmind.txt") -eq 2 ]] ||
  { echo "bench_compare.sh: expected batch 1 and 8 'decode:' lines in $out/vkmind_generate.txt" >&2; exit 1; }

# The ratios, with the targets of issue 8 (training against bf16 autocast, decoding at batch 1).
"$python" - "$out/vkmind.txt" "$out/torch.json" <<'EOF'
import json, sys
vk = {}
for line in open(sys.argv[1]):
    *key, value = line.split()
    vk[" ".join(key)] = float(value)
torch = json.load(open(sys.argv[2]))
targets = {"eager bf16": 1.5, "compile bf16": 1.0, "fp32 batch 1": 3.0, "bf16 batch 1": 3.0}
print(f"\nvkmind vs torch {torch['torch']} ({torch['device']}), {torch['model']}, training batch {torch['batch']} x {torch['seq']}")
print("| measurement | vkmind | tokens/s | torch mode | tokens/s | vkmind/torch | target |")
print("|---|---|---:|---|---:|---:|---:|")
def row(kind, vk_mode, torch_mode):
    mine, theirs = vk.get(f"{kind} {vk_mode}"), torch[f"{kind}_tokens_per_s"].get(torch_mode)
    target = f"≥{targets[torch_mode]:.1f}×" if torch_mode in targets else ""
    if mine is None:
        return
    if theirs is None:
        why = torch["skipped"].get(f"{kind} {torch_mode}", "not measured")
        print(f"| {kind} | {vk_mode} | {mine:.1f} | {torch_mode} | skipped: {why} | - | {target} |")
    else:
        print(f"| {kind} | {vk_mode} | {mine:.1f} | {torch_mode} | {theirs:.1f} | {mine / theirs:.2f}× | {target} |")
train = next(key.split()[1] for key in vk if key.startswith("train "))
for mode in ("eager fp32", "eager bf16", "compile fp32", "compile bf16"):
    row("train", train, mode)
for batch in ("1", "8"):
    for dtype in ("fp32", "bf16"):
        row("decode", f"batch {batch}", f"{dtype} batch {batch}")
print(f"\nvkmind trained in {train}; the training targets are against torch's bf16 autocast, decoding's at batch 1.")
EOF
echo "raw outputs: $out" >&2
