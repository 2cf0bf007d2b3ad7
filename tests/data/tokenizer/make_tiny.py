#!/usr/bin/python3
"""Writes the hand-made test tokenizers tiny/ (MiniMind's layout: ByteLevel regex, merges as "a b") and
tiny_qwen/ (Qwen2's: NFC, Split + ByteLevel, merges as [a, b] pairs, a non-special added token outside the
model's vocabulary). The merges are built from the word list below: each word is split as the merges so far
split it, and its parts are then merged left to right, so that every word ends as one token; a few common
pairs come first so that rank order matters. Run: python3 tests/data/tokenizer/make_tiny.py"""
import json
import os

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

FIRST_PAIRS = ["he", "th", "in", "er", "an", "re", "on", "at", "en", "es", "or", " t", " a", "  "]
WORDS = (
    "the and ing tion ed er es ly Hello World world hello quick brown fox jumps over lazy dog "
    "I you it is are was be to of in on at for with that this not but from they we "
    "don can will would should could have has had do does did go going one two three "
    "def return import class self print if else elif for while None True False int str "
    "123 2024 100 00 000 3.14 1e9 "
    "你好 世界 中国 的 是 我 人 大 一 不 了 在 有 这 个 上 们 来 到 时 说 要 就 出 会 可 也 你 对 生 能 而 子 那 得 于 着 下 自 之 "
    "年 过 发 后 作 里 用 道 行 所 然 家 种 事 成 方 多 经 么 去 法 学 如 都 同 现 当 没 动 面 起 看 定 天 分 还 进 好 小 部 其 些 主 样 理 心 "
    "春 花 秋 月 山 水 风 雨 明 白 日 依 尽 黄 河 入 海 流 床 前 光 疑 地 霜 举 头 望 低 思 故 乡 "
    "，。！？：；“”（）《》、 😀 👍 🎉 ❤️ é ü ñ ß"
).split()
SPACED = ["the", "and", "of", "to", "in", "is", "a", "quick", "brown", "fox", "world", "World", "return", "=", "==",
          "(", "{", "}", "->", "#", "//", "1", "12"]
WHITESPACE = ["  ", "    ", "\n\n", "\n", "\t", "\t\t", " \n", "\n    ", "\r\n"]
CODE = ["():", "()", "[]", "{}", "->", "==", "!=", "<=", ">=", "+=", "::", "...", "\"\"", "''", "');", "\");", "/*", "*/"]


def bytes_to_unicode():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    byte = bytes_to_unicode()
    level = lambda s: "".join(byte[b] for b in s.encode("utf-8"))
    vocab = {t: i for i, t in enumerate(SPECIAL)}
    for b in range(256):
        vocab[byte[b]] = len(vocab)
    merges = []

    rank = {}

    def split(word):  # BPE with the merges so far: lowest rank first, leftmost among equals
        parts = list(level(word))
        while True:
            pairs = [(rank[(a, b)], i) for i, (a, b) in enumerate(zip(parts, parts[1:])) if (a, b) in rank]
            if not pairs:
                return parts
            _, i = min(pairs)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]

    def add(word):
        parts = split(word)
        while len(parts) > 1:
            a, b = parts[0], parts[1]
            if (a, b) not in rank:  # two merges may make the same token
                vocab.setdefault(a + b, len(vocab))
                rank[(a, b)] = len(merges)
                merges.append((a, b))
            parts[0:2] = [a + b]

    for w in FIRST_PAIRS + WORDS + [" " + w for w in SPACED] + WHITESPACE + CODE:
        add(w)

    def write(name, normalizer, pre, post, merge_list, extra_added):
        added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for i, t in enumerate(SPECIAL)]
        added += extra_added
        doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
               "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": post,
               "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
               "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                         "vocab": vocab, "merges": merge_list}}
        os.makedirs(os.path.join(here, name), exist_ok=True)
        with open(os.path.join(here, name, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")

    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    write("tiny", None, byte_level, None, [a + " " + b for a, b in merges], [])
    qwen_pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
    tool_call = {"id": len(vocab), "content": "<tool_call>", "single_word": False, "lstrip": False,
                 "rstrip": False, "normalized": False, "special": False}
    write("tiny_qwen", {"type": "NFC"}, qwen_pre,
          {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
          [[a, b] for a, b in merges], [tool_call])
    print(f"{len(vocab)} tokens, {len(merges)} merges")


main()
