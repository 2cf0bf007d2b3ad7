"""The World English Bible (sword-text-web), from the SWORD module's compressed text.

A ztext module keeps zlib blocks (.bzz) located by a block index (.bzs: offset, size, uncompressed size)
and a verse index (.bzv: block, start, size), per testament. Verses lose their notes and markup and are
grouped into paragraphs of about 1000 characters.
"""
import os
import re
import struct
import zlib

from common import grouped, pretrain

PACKAGES = [("deb", "sword-text-web")]
DIR = "sword-text-web/usr/share/sword/modules/texts/ztext/engWEB2015eb"
NOTE = re.compile(r"<note\b.*?</note>", re.S)
TAG = re.compile(r"<[^>]*>")
SPACE_BEFORE_PUNCT = re.compile(r" ([,.;:!?’”)])")


def build(raw):
    texts = []
    for testament in ("ot", "nt"):
        texts += [pretrain(p) for p in grouped(verses(os.path.join(raw, DIR, testament)), " ")]
    return texts, []


def verses(base):
    def read(ext):
        with open(base + ext, "rb") as f:
            return f.read()

    bzs, bzz, bzv = read(".bzs"), read(".bzz"), read(".bzv")
    blocks = []
    for k in range(len(bzs) // 12):
        offset, size, _ = struct.unpack_from("<III", bzs, 12 * k)
        blocks.append(zlib.decompress(bzz[offset:offset + size]) if size else b"")
    for k in range(len(bzv) // 10):
        block, start, size = struct.unpack_from("<IIH", bzv, 10 * k)
        if size and block < len(blocks):
            text = blocks[block][start:start + size].decode("utf-8", "replace")
            # A note stands where the space after its word was ("God<note>...</note><w>created").
            text = " ".join(TAG.sub("", NOTE.sub(" ", text)).split())
            text = SPACE_BEFORE_PUNCT.sub(r"\1", text)
            if text:
                yield text
