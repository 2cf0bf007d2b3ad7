"""Chinese fortunes (fortunes-zh): proverbs, classics, Tang and Song poems, quotations; records split by "%".

Quotations carry their source on a last line "-- 钱钟书" (the chinese file), or as a header "《送别》 /
作者：王维" (tang300, song100): those become quotation -> source pairs. Excerpts of Debian's manuals and
quotations from English writers stay pretraining text only.
"""
import os
import re

from common import pick, pretrain, read_text, sft, to_simplified

PACKAGES = [("deb", "fortunes-zh")]
DIR = "fortunes-zh/usr/share/games/fortunes"
FILES = ("chinese", "tang300", "song100")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ATTRIBUTION = re.compile(r"\s*--\s*(.+)")
TITLE = re.compile(r"(?:题目[:：])?(《.+》.*)")
AUTHOR = re.compile(r"作者[:：]\s*([^（(]+).*")
MAX_QUOTE = 200


def build(raw):
    records = []
    for name in FILES:
        text = ANSI.sub("", read_text(os.path.join(raw, DIR, name)))
        records += [r.strip("\n") for r in re.split(r"\n%\n", text) if r.strip()]
    texts, pairs = [], []
    for record in to_simplified(records):  # some records are in traditional characters
        lines = [x.strip() for x in record.split("\n")]
        quote, source = attributed(lines)
        texts.append(pretrain("\n".join(lines).strip(), rank=0 if source else 1))
        if source and quote and len(quote) <= MAX_QUOTE:
            ask = pick(["「{}」出自哪里？", "下面这段话出自哪里？\n{}"], quote).format(quote)
            said = f"出自{source}。" if "《" in source else f"这是{source}说的。"
            pairs.append(sft("quote-source", ask, said, rank=0 if len(quote) <= 60 else 1))
    return texts, pairs


def attributed(lines):
    """(quotation, source), or (text, "") when there is no source or it is Debian's or in Latin letters."""
    source = ""
    m = ATTRIBUTION.fullmatch(lines[-1])
    if m:
        source, lines = m[1].strip(), lines[:-1]
    elif len(lines) > 2 and TITLE.fullmatch(lines[0]) and AUTHOR.fullmatch(lines[1]):
        source, lines = AUTHOR.fullmatch(lines[1])[1].strip() + TITLE.fullmatch(lines[0])[1], lines[2:]
    quote = "\n".join(x for x in lines if x)
    return (quote, "") if re.search(r"[A-Za-z]", source) else (quote, source)
