#!/usr/bin/env bash
# Writes DIR/golden.json for each tokenizer folder DIR given: the ids of a fixed set of strings as an
# independent implementation encodes them, to check vkmind's encoder against (tests/model/tokenizer_test.cpp).
# The reference is Hugging Face's tokenizers.js (the tokenizer code of transformers.js, pure JavaScript), and
# chat templates are rendered by @huggingface/jinja, both fetched from the npm registry into a temporary folder
# (no install scripts, no binaries). Used only to make test data: the build and the tests never run it.
#
#   tools/golden_tokenizer.sh tests/data/tokenizer/tiny tests/data/tokenizer/tiny_qwen tests/data/tokenizer/trained
#
# JavaScript strings cannot hold invalid UTF-8, so the "lossy_invalid" case is the text that
# String::from_utf8_lossy makes of invalid bytes; the test checks that vkmind splits the invalid bytes exactly
# where it splits that text, and that they round-trip.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 TOKENIZER_DIR..." >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null &&
  npm install --ignore-scripts --no-audit --no-fund @huggingface/tokenizers@0.2.0 @huggingface/jinja@0.5.11 >/dev/null)

cat > "$work/golden.mjs" <<'JS'
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";

const cases = {
  english: "Hello World! The quick brown fox jumps over the lazy dog.",
  contractions: "I'm sure it's fine, DON'T you think? We'll see; they've gone, he'd say, you're 'quoted'.",
  chinese: "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
  chinese_modern: "你好，世界！我们在中国学习人工智能，这是一个小模型。",
  mixed: "MiniMind是一个小模型，only 26M参数，训练2小时。Hello世界123！",
  emoji: "Great job 👍🎉 ❤️ 👨‍👩‍👧‍👦 🏳️‍🌈 😀😀",
  whitespace: "  leading\ttabs\t\tand   spaces\n\n\nnewlines \n  \r\n trailing   ",
  unicode_spaces: "a\u00a0b\u3000c\u2003d\u2028e\u0085f \u00a0 g",
  code: "def f(x):\n    return x == 1 -> {}  # comment\n\tif (a != b) { c += 1; } // done\n",
  numbers: "123 4567 3.14159 1e9 2024-01-01 ١٢٣ ½ 00007",
  special_inside: "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\nHi!<|im_end|>\n<|endoftext|>",
  special_adjacent: "a<|endoftext|><|endoftext|>b<|im_start|><|im_end|>",
  special_partial: "<|im_start <|im_end| <|endoftext|x <|im_start|",
  accents: "Café naïve façade Ångström Zürich señor straße",
  normalization: "ﬁnance ① ｆｕｌｌ　ｗｉｄｔｈ ㎏ Ⅻ e\u0301 A\u030a",
  lossy_invalid: "ab\ufffdcd \ufffd\ufffd e\ufffdabc \ufffd",
  tool_call: "<tool_call>{\"name\": \"f\"}</tool_call>",
  single_space: " ",
  long_word: "a".repeat(300) + "你".repeat(100),
};

const chats = [
  { messages: [{ role: "user", content: "你好" }], add_generation_prompt: true },
  { messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: "Hi" },
               { role: "assistant", content: "Hello!" }], add_generation_prompt: false },
  { messages: [{ role: "user", content: "1+1=?" }], add_generation_prompt: true, system_prompt: "你是一个乐于助人的助手。" },
  { messages: [{ role: "system", content: "own" }, { role: "user", content: "x\ny" }], add_generation_prompt: true,
    system_prompt: "ignored" },
  { messages: [], add_generation_prompt: true, system_prompt: "only a system prompt" },
  { messages: [], add_generation_prompt: false },
];

for (const dir of process.argv.slice(2)) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const configFile = path.join(dir, "tokenizer_config.json");
  const config = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, "utf8")) : {};
  const tokenizer = new Tokenizer(json, config);
  const out = {
    generator: "tools/golden_tokenizer.sh (@huggingface/tokenizers 0.2.0, @huggingface/jinja 0.5.11)",
    cases: Object.entries(cases).map(([name, text]) => ({ name, text, ids: tokenizer.encode(text).ids })),
    chat: [],
  };
  if (config.chat_template) {
    const template = new Template(config.chat_template);
    for (const chat of chats) {
      const text = template.render(chat);
      out.chat.push({ ...chat, text, ids: tokenizer.encode(text).ids });
    }
  }
  fs.writeFileSync(path.join(dir, "golden.json"), JSON.stringify(out, null, 1) + "\n");
  console.log(`${dir}/golden.json: ${out.cases.length} strings, ${out.chat.length} chats`);
}
JS

dirs=()
for d in "$@"; do dirs+=("$(realpath "$d")"); done
(cd "$work" && node golden.mjs "${dirs[@]}")
