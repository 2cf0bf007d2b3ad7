"""The Debian FAQ in English and Chinese (debian-faq, debian-faq-zh-cn): one question-answer pair per section.

The plain-text FAQ puts headings ("5.8. How can I check ...?") at column 0 and bodies indented, wrapped at 69
columns. Wrapped prose is joined back into one line per paragraph; blocks whose line breaks are not wrapping
(commands, program output) keep them. Headings that are not questions ("8.1.1. dpkg") are asked about.
"""
import gzip
import os
import re
import unicodedata

from common import pretrain, sft, width

PACKAGES = [("deb", "debian-faq"), ("deb", "debian-faq-zh-cn")]
FILES = {"en": "debian-faq/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",
         "zh": "debian-faq-zh-cn/usr/share/doc/debian/FAQ/debian-faq.zh-cn.txt.gz"}
HEADING = re.compile(r"(\d+(?:\.\d+)+)\.[ \u00a0]+(\S.*)")
# A URL broken by the wrapping: "https:" or "https://host/path#" ends the line, or "(https://..." is not closed.
URL_BREAK = re.compile(r"https?:(//\S*[/#?&=_.-])?$|\(https?:[^\s)]*$")
WRAP = 69
SLACK = 2  # lines of wrapped prose can end a column or two short (a non-breaking space, a wide character)


def build(raw):
    texts, pairs = [], []
    for lang, rel in FILES.items():
        with gzip.open(os.path.join(raw, rel), "rt", encoding="utf-8") as f:
            for question, answer in qa_pairs(f.read(), lang):
                texts.append(pretrain(question + "\n\n" + answer))
                pairs.append(sft("faq-" + lang, question, answer))
    return texts, pairs


def qa_pairs(text, lang):
    """(question, answer) for every section with a body."""
    for title, body in sections(text.split("\n")):
        answer = "\n\n".join(render(body))
        if answer:
            yield as_question(title, lang), answer


def sections(lines):
    """(title, body lines) per numbered heading. A body ends at the next line that starts at column 0
    (heading, chapter title); table-of-contents entries are indented, so they are not headings."""
    i = 0
    while i < len(lines):
        m = HEADING.fullmatch(lines[i].rstrip())
        i += 1
        if not m:
            continue
        title = [m[2]]
        while i < len(lines) and lines[i].strip() and not lines[i][0].isspace():  # a wrapped heading
            title.append(lines[i].strip())
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i][0].isspace()):
            body.append(lines[i].rstrip())
            i += 1
        yield unwrap(title).replace("\u00a0", " "), body


def as_question(title, lang):
    if "?" in title or "？" in title:
        return title
    if lang == "zh":
        return f"关于“{title}”，Debian FAQ 是怎么说的？"
    return f"What does the Debian FAQ say about “{title}”?"


def render(body):
    """The body's blocks (paragraphs, list items, preformatted text), each as one string."""
    blocks, cur = [], []
    for line in body + [""]:
        starts_item = line.lstrip().startswith("* ")
        if cur and (not line or starts_item):
            blocks.append(cur)
            cur = []
        if line:
            cur.append(line)
    out = []
    for block in blocks:
        indent = min(len(x) - len(x.lstrip()) for x in block)
        lines = [x[indent:] for x in block]
        bullet = "* " if lines[0].startswith("* ") else ""
        if bullet:
            lines = [lines[0][2:]] + [x.strip() for x in lines[1:]]
        if all(is_wrap(a, b) for a, b in zip(block, block[1:])):
            out.append(bullet + unwrap([x.strip() for x in lines]))
        else:
            out.append(bullet + "\n".join(lines))
    return [b.replace("\u00a0", " ") for b in out]


def is_wrap(line, following):
    """Whether the break after `line` is wrapping: the next word would not have fit within WRAP columns."""
    word = following.lstrip().split(" ")[0]
    first = word if width(word[0]) == 1 else word[0]  # wide (CJK) text wraps between any two characters
    return width(line) + 1 + width(first) > WRAP - SLACK


def unwrap(lines):
    out = lines[0]
    for line in lines[1:]:
        out += joiner(out, line) + line
    return out


def url_continues(before, after):
    return URL_BREAK.search(before) and after[0] != "(" or after.startswith("/") and "://" in before.split()[-1]


def hyphenated(before, after):
    return before.endswith("-") and before[-2:-1].isalpha() and after[:1].islower()


def joiner(before, after):
    """What the wrapping removed between two lines: a space between words, nothing inside a URL or a
    hyphenated word or between Chinese characters, a space between Chinese and Latin letters."""
    if url_continues(before, after) or before.endswith("/") or hyphenated(before, after):
        return ""
    a, b = before[-1], after[0]
    wide_a, wide_b = width(a) == 2, width(b) == 2
    if wide_a == wide_b:
        return "" if wide_a else " "
    narrow, wide = (b, a) if wide_a else (a, b)
    return " " if narrow.isalnum() and unicodedata.category(wide) == "Lo" else ""
