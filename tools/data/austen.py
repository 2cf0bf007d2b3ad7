"""Jane Austen's six novels (r-cran-janeaustenr), read from R's serialized data without R.

The package keeps each novel as a character vector of lines in data/Rdata.rdb (one zlib stream per object,
located through the gzip-compressed index Rdata.rdx). A small reader of R's XDR serialization (versions 2
and 3) handles what these files hold: character vectors, lists, pairlists, symbols, numbers.
"""
import gzip
import os
import struct
import zlib

from common import pretrain

PACKAGES = [("deb", "r-cran-janeaustenr")]
DATA = "r-cran-janeaustenr/usr/lib/R/site-library/janeaustenr/data/Rdata"
NIL, SYMBOL, PAIRLIST, LANG, CHARSXP, REF = 254, 1, 2, 6, 9, 255
EMPTY = (253, 242)  # global and empty environments
VECTORS = (16, 19, 20)  # character vector, list, expression
INTS, DOUBLES = (10, 13), (14,)  # logical and integer; double
HAS_ATTR, HAS_TAG = 1 << 9, 1 << 10


def build(raw):
    with open(os.path.join(raw, DATA + ".rdx"), "rb") as f:
        index = RReader(gzip.decompress(f.read())).item()
    with open(os.path.join(raw, DATA + ".rdb"), "rb") as f:
        rdb = f.read()
    texts = []
    for name, (offset, size) in sorted(index["variables"].items()):
        # An object is a 4-byte big-endian length, then a zlib stream.
        lines = RReader(zlib.decompress(rdb[int(offset) + 4:int(offset) + int(size)])).item()
        if isinstance(lines, list) and all(isinstance(x, str) or x is None for x in lines):
            texts += [pretrain(p) for p in paragraphs(lines)]
    return texts, []


def paragraphs(lines):
    para = []
    for line in lines + [""]:
        if line and line.strip():
            para.append(line.strip())
        elif para:
            yield " ".join(para)
            para = []


class RReader:
    """R's serialize() in XDR format: just enough for character vectors, lists and their names."""

    def __init__(self, buf):
        if buf[:2] != b"X\n":
            raise ValueError("not an XDR R serialization")
        self.b, self.i, self.refs = buf, 2, []
        version = self.int()
        self.int(), self.int()  # the writer's and the minimal reader's R versions
        if version == 3:
            n = self.int()  # then the native encoding's name
            self.i += n

    def int(self):
        v = struct.unpack_from(">i", self.b, self.i)[0]
        self.i += 4
        return v

    def numbers(self, code, size):
        n = self.length()
        v = list(struct.unpack_from(f">{n}{code}", self.b, self.i))
        self.i += size * n
        return v

    def length(self):
        n = self.int()
        return (self.int() << 32) + self.int() if n == -1 else n

    def item(self):
        flags = self.int()
        kind = flags & 0xFF
        if kind == NIL or kind in EMPTY:
            return None
        if kind == REF:  # a symbol seen before
            k = flags >> 8
            return self.refs[(k if k else self.int()) - 1]
        if kind == SYMBOL:
            s = self.item()
            self.refs.append(s)
            return s
        if kind == CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA
            self.i += n
            return self.b[self.i - n:self.i].decode("utf-8", "replace")
        if kind in (PAIRLIST, LANG):
            return self.pairlist(flags)
        if kind in VECTORS:
            v = [self.item() for _ in range(self.length())]
        elif kind in INTS:
            v = self.numbers("i", 4)
        elif kind in DOUBLES:
            v = self.numbers("d", 8)
        else:
            raise ValueError(f"unsupported R type {kind}")
        if flags & HAS_ATTR:
            attrs = dict(self.item())
            if "names" in attrs:
                v = dict(zip(attrs["names"], v))
        return v

    def pairlist(self, flags):
        """[(tag, value)]; a pairlist is a chain of cells, each with optional attributes and tag."""
        out = []
        while flags & 0xFF in (PAIRLIST, LANG):
            if flags & HAS_ATTR:
                self.item()
            tag = self.item() if flags & HAS_TAG else None
            out.append((tag, self.item()))
            flags = self.int()
        if flags & 0xFF != NIL:
            raise ValueError(f"a pairlist ends with R type {flags & 0xFF}")
        return out
