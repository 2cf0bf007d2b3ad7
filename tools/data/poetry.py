"""Classical Chinese poetry and classics (npm chinese-poetry), in simplified characters.

Every JSON object with a text list (paragraphs, content or para) is a piece; nested collections (千家诗,
蒙学) are walked down. A piece whose dynasty is known (from its folder, or "（唐）" before its author) is a
poem and gets templated tasks: title -> poem, first line -> its couplet, couplet -> author and title.
Regular poems (绝句 and 律诗 of five or seven characters a line) rank first and get all three tasks, the
others one, so that the poetry does not drown everything else.
"""
import glob
import json
import os
import re

from common import norm, pick, pretrain, sft, stable_hash, to_simplified

PACKAGES = [("npm", "chinese-poetry")]
DIST = "chinese-poetry/package/dist"
SKIP = re.compile(r"^(rank|strains|yudingquantangshi|quantangshi/error)/|/authors?\.|表面结构字")  # metadata, repeats
DYNASTY = [("quantangshi/poet.song", "宋"), ("quantangshi/", "唐"), ("songci/", "宋"), ("yuanqu/", "元"),
           ("wudaishici/", "五代"), ("nalanxingde/", "清"), ("caocaoshiji/", "汉"), ("shijing/", "先秦"),
           ("chuci/", "先秦"), ("shuimotangshi/", "唐"), ("mengxue/tangshisanbaishou", "唐")]
GENRE = [("songci/", "词"), ("wudaishici/", "词"), ("nalanxingde/", "词"), ("yuanqu/", "曲")]
TEXT_KEYS = ("paragraphs", "content", "para")
ANONYMOUS = {"", "佚名", "无名氏", "不详"}
REGULAR = {(2, 5): "五言绝句", (2, 7): "七言绝句", (4, 5): "五言律诗", (4, 7): "七言律诗"}


def build(raw):
    pieces = to_simplified(list(read_pieces(os.path.join(raw, DIST))))
    texts, tasks, seen = [], [], set()
    for p in pieces:
        body = "\n".join(p["lines"])
        if norm(body) in seen:  # the same poem in several collections (唐诗三百首, 千家诗, 全唐诗)
            continue
        seen.add(norm(body))
        form = regular_form(p["lines"])
        texts.append(pretrain(header(p) + body, rank=0 if form else 1))
        if p["dynasty"]:
            tasks.extend(poem_tasks(p, form))
    return texts, tasks


def read_pieces(dist):
    """{"title", "author", "dynasty", "genre", "lines"} per piece, in file order."""
    paths = glob.glob(os.path.join(dist, "**", "*.json"), recursive=True)
    # The anthologies for children (蒙学) last: a poem found twice keeps its title from 全唐诗.
    for path in sorted(paths, key=lambda p: ("mengxue" in p, p)):
        rel = os.path.relpath(path, dist).replace(os.sep, "/")
        if SKIP.search(rel):
            continue
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        dynasty = next((d for prefix, d in DYNASTY if rel.startswith(prefix)), "")
        genre = next((g for prefix, g in GENRE if rel.startswith(prefix)), "诗")
        yield from walk(data, {"title": "", "author": "", "dynasty": dynasty, "genre": genre})


def walk(node, context):
    if isinstance(node, list):
        for item in node:
            yield from walk(item, context)
        return
    if not isinstance(node, dict):
        return
    here = dict(context)
    here["title"] = " ".join(str(node.get("title") or node.get("rhythmic") or node.get("chapter") or "").split()) \
        or context["title"]
    author = str(node.get("author") or context["author"])
    m = re.fullmatch(r"[（(](.+?)[)）](.+)", author)  # 千家诗: "（唐）孟浩然"
    if m:
        here["dynasty"], author = m[1], m[2]
    here["author"] = author
    for key in TEXT_KEYS:
        value = node.get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
            lines = [x.strip() for x in value if x.strip()]
            if lines:
                yield dict(here, lines=lines)
            return
        if isinstance(value, list):  # a collection: its pieces take its author and dynasty unless they have their own
            yield from walk(value, here)
            return


def header(p):
    """"静夜思\n唐·李白\n", the way anthologies print a poem."""
    byline = "·".join(x for x in (p["dynasty"], p["author"]) if x and x not in ANONYMOUS)
    return "".join(x + "\n" for x in (p["title"], byline) if x)


def regular_form(lines):
    """"五言绝句" etc. when every line is one couplet of two equal halves of 5 or 7 characters, else ""."""
    halves = [re.fullmatch(r"([\u4e00-\u9fff]+)，([\u4e00-\u9fff]+)[。？！]", x) for x in lines]
    if not all(halves) or len({len(m[1]) for m in halves} | {len(m[2]) for m in halves}) != 1:
        return ""
    return REGULAR.get((len(lines), len(halves[0][1])), "")


def poem_tasks(p, form):
    title, author, lines = p["title"], p["author"], p["lines"]
    body = "\n".join(lines)
    genre, rank = p["genre"], 0 if form else 1
    tasks = []
    if title and len(lines) >= 2:
        if genre == "词":
            ask = pick(["请以《{t}》为词牌填一首词。", "填一首《{t}》。"], body)
        else:
            ask = pick(["请写一首{k}，题为《{t}》。", "以《{t}》为题，写一首{k}。"], body)
        tasks.append(sft("poem-title", ask.format(t=title, k=form or genre), body, rank=rank))
    first = re.fullmatch(r"(.{3,12}?)[，、](.+)", lines[0])
    if first:
        ask = pick(["「{}」的下一句是什么？", "接下句：{}"], body).format(first[1])
        tasks.append(sft("poem-next", ask, lines[0], rank=rank))
    if title and author not in ANONYMOUS:
        era = p["dynasty"] + "代" if len(p["dynasty"]) == 1 else p["dynasty"]  # 唐代, 五代, 先秦
        ask = pick(["「{}」出自哪首{}？作者是谁？", "「{}」是谁写的？"], body).format(lines[0], genre)
        tasks.append(sft("poem-author", ask, f"出自{era}{author}的《{title}》。", rank=rank))
    # Regular poems keep every task; the others one, chosen by the poem.
    return tasks if form or not tasks else [tasks[stable_hash(body) % len(tasks)]]
