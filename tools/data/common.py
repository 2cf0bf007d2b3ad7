"""What the data builders share: record shapes, hashing, JSONL files, external commands.

A source module (poetry.py, debian_faq.py, ...) names the packages it reads in PACKAGES and turns their
files into records with build(raw_dir) -> (pretrain, sft):
  pretrain: {"text": str, "rank": int}
  sft:      {"task": str, "rank": int, "conversations": [user turn, assistant turn]}
A lower rank is preferred when a budget (--small) keeps only part of a source.
"""
import hashlib
import json
import os
import shlex
import subprocess
import tempfile
import unicodedata


class DataError(Exception):
    """A problem the user can act on (a package that cannot be fetched, a missing tool): build.py prints it
    without a traceback."""


def run(cmd, what, cwd=None):
    """Runs cmd and returns its stdout; a failure raises DataError naming `what` and the command line."""
    return run_all([cmd], what, cwd)[0]


def run_all(cmds, what, cwd=None):
    """Runs the commands side by side (a process each) and returns their stdouts, as run() does."""
    procs = []
    for cmd in cmds:
        try:
            procs.append(subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        except FileNotFoundError:
            raise DataError(f"{what}: `{shlex.join(cmd)}` failed: {cmd[0]} is not installed (run tools/setup.sh)") \
                from None
    outs = [p.communicate() for p in procs]
    for cmd, p, (out, err) in zip(cmds, procs, outs):
        if p.returncode != 0:
            said = " | ".join((err or out).strip().splitlines()[-3:])
            raise DataError(f"{what}: `{shlex.join(cmd)}` failed with exit code {p.returncode}: {said}")
    return [out for out, _ in outs]


def pretrain(text, rank=0):
    return {"text": text, "rank": rank}


def sft(task, question, answer, rank=0):
    return {"task": task, "rank": rank,
            "conversations": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def norm(text):
    """The text with every run of whitespace made one space: what deduplication compares."""
    return " ".join(text.split())


def stable_hash(text):
    """A 64-bit hash that is the same in every run and on every machine (Python's hash() is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def pick(options, key):
    """One of `options`, the same one for the same key every time."""
    return options[stable_hash(key) % len(options)]


def width(text):
    """Columns on a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path, records):
    """Writes through a temporary file, so an interrupted run never leaves a half-written file behind."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(path + ".tmp", path)


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def grouped(pieces, sep, limit=1000):
    """Pieces joined by sep into texts of at most about `limit` characters (a piece is never split)."""
    cur = ""
    for p in pieces:
        if cur and len(cur) + len(p) > limit:
            yield cur
            cur = ""
        cur = cur + sep + p if cur else p
    if cur:
        yield cur


def to_simplified(records):
    """The records (any JSON values) with traditional Chinese characters made simplified by opencc's t2s,
    which leaves simplified text and everything else as it is; one opencc per core on a slice each."""
    n = max(1, min(os.cpu_count() or 1, len(records) // 1000))
    with tempfile.TemporaryDirectory() as tmp:
        paths = [(os.path.join(tmp, f"{k}.in"), os.path.join(tmp, f"{k}.out")) for k in range(n)]
        for k, (src, _) in enumerate(paths):
            write_jsonl(src, records[k * len(records) // n:(k + 1) * len(records) // n])
        run_all([["opencc", "-c", "t2s.json", "-i", src, "-o", dst] for src, dst in paths],
                "converting to simplified characters")
        return [r for _, dst in paths for r in read_jsonl(dst)]
