#!/usr/bin/env bash
# The baseline for `vkmind bench tokenizer`: Debian's sentencepiece (python3-sentencepiece, installed here
# when missing) trains a BPE of the same vocabulary on the same corpus and encodes it on one thread.
# Prints training wall time and peak memory (/usr/bin/time -v), encoding MB/s and bytes per token.
#
#   tools/bench_sentencepiece.sh data/corpus_mixed.jsonl [VOCAB]
set -euo pipefail
corpus=${1:?usage: tools/bench_sentencepiece.sh CORPUS.jsonl [VOCAB]}
vocab=${2:-6400}
py=/usr/bin/python3

if ! $py -c "import sentencepiece" 2>/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-sentencepiece time >/dev/null ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-sentencepiece time >/dev/null; }
fi
[ -x /usr/bin/time ] || { echo "bench_sentencepiece: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# sentencepiece reads sentences, one per line: the "text" fields, split at their line breaks.
$py - "$corpus" "$work/corpus.txt" <<'PY'
import json, sys
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for line in open(sys.argv[1], encoding="utf-8"):
        if line.strip():
            for s in json.loads(line)["text"].split("\n"):
                if s.strip():
                    out.write(s + "\n")
PY

cores=$(nproc)
# character_coverage 0.995: at 0.9995 this corpus needs ~7000 single characters and 6400 pieces cannot
# hold them. max_sentence_length: a few English paragraphs are longer than the default 4192 bytes.
/usr/bin/time -v -o "$work/time.txt" $py - "$work" "$vocab" "$cores" <<'PY'
import sys, sentencepiece as spm
work, vocab, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spm.SentencePieceTrainer.train(input=f"{work}/corpus.txt", model_prefix=f"{work}/sp", model_type="bpe",
                               vocab_size=vocab, byte_fallback=True, character_coverage=0.995,
                               num_threads=cores, max_sentence_length=65536, minloglevel=2)
PY
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
echo "sentencepiece train: ${wall} wall on ${cores} threads, peak RSS $((rss / 1024)) MiB"

# Encoding: the same texts `vkmind bench tokenizer` encodes (each "text" whole), one thread.
$py - "$corpus" "$work/sp.model" <<'PY'
import json, sys, time, sentencepiece as spm
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
sp = spm.SentencePieceProcessor(model_file=sys.argv[2])
nbytes = sum(len(t.encode("utf-8")) for t in texts)
t0 = time.perf_counter()
tokens = sum(len(sp.encode(t)) for t in texts)
s = time.perf_counter() - t0
print(f"sentencepiece encode: 1 thread {s:.2f} s = {nbytes / 1e6 / s:.2f} MB/s; "
      f"{tokens} tokens, {nbytes / tokens:.3f} bytes/token over {nbytes / 1e6:.1f} MB")
PY
