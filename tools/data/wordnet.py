"""WordNet (wordnet-base): "What does X mean?" with the word's most common senses as the answer.

index.POS lists each lemma's synsets most frequent first, with the number of its senses seen in tagged text
(a frequency); data.POS holds each synset's gloss: a definition, then examples in double quotes. Lemmas
found in tagged text rank first, so a budget keeps common words.
"""
import os
import re

from common import pick, read_text, sft

PACKAGES = [("deb", "wordnet-base")]
DIR = "wordnet-base/usr/share/wordnet"
POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
MAX_SENSES = 3
QUESTIONS = ['What does "{}" mean?', 'What is the meaning of "{}"?', 'Define "{}".']


def build(raw):
    senses = {}  # lemma -> [(tagged count of its part of speech, part of speech, gloss)] in frequency order
    for pos, name in POS.items():
        glosses = read_glosses(os.path.join(raw, DIR, "data." + pos))
        for lemma, tagged, offsets in read_index(read_text(os.path.join(raw, DIR, "index." + pos)).split("\n")):
            senses.setdefault(lemma, []).extend((tagged, name, glosses[o]) for o in offsets if o in glosses)
    pairs = []
    for lemma, found in senses.items():
        if not found or not lemma[0].isalpha():
            continue
        found.sort(key=lambda s: -s[0])  # stable: a part of speech's senses stay in frequency order
        word = lemma.replace("_", " ")
        pairs.append(sft("wordnet", pick(QUESTIONS, word).format(word), answer(word, found[:MAX_SENSES]),
                         rank=-max(s[0] for s in found)))
    return [], pairs


def read_index(lines):
    """(lemma, senses tagged in text, synset offsets most frequent first) per index line."""
    for line in lines:
        if not line or line.startswith(" "):  # the licence header is indented
            continue
        f = line.split()
        pointers = int(f[3])
        synsets, tagged = int(f[2]), int(f[5 + pointers])
        yield f[0], tagged, f[6 + pointers:6 + pointers + synsets]


def read_glosses(path):
    """{synset offset: (definition, [examples])}; the offset is each data line's first field."""
    out = {}
    for line in read_text(path).split("\n"):
        if not line or line.startswith(" ") or " | " not in line:
            continue
        gloss = line.split(" | ", 1)[1].strip()
        definition = re.split(r';\s*"', gloss, maxsplit=1)[0].strip().rstrip(";").strip()
        out[line.split(" ", 1)[0]] = (definition, re.findall(r'"([^"]+)"', gloss))
    return out


def answer(word, senses):
    def sense(pos, gloss):
        definition, examples = gloss
        # A synset's examples may show another of its words ("zestily": "... zestfully"): only the word's own.
        own = [e for e in examples if word.lower() in e.lower()]
        return f"({pos}) {definition}." + (f' Example: "{own[0]}"' if own else "")

    if len(senses) == 1:
        _, pos, gloss = senses[0]
        return f'"{word}" {sense(pos, gloss)}'
    lines = [f"{k}. {sense(pos, gloss)}" for k, (_, pos, gloss) in enumerate(senses, 1)]
    return f'"{word}" can mean:\n' + "\n".join(lines)
