"""scripts/variant_sites.py: the site-labelled news extraction reads badly written crawls and counts
every record it loses. Fixtures are written here in the sources' own shapes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "variant_sites.py"
spec = importlib.util.spec_from_file_location("variant_sites", SCRIPT)
vs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vs)

BODY = "台北市政府今天宣布，明年起將擴大補助老舊公寓加裝電梯，符合條件的住戶最高可獲得一半工程費用，" * 2


def test_scan_recovers_joined_arrays_and_counts_broken_records():
    good = {"url": "http://a.example.com.tw/1", "title": "標題", "content": BODY}
    # two arrays joined with no comma, and a record whose title has a raw quote in it
    raw = (json.dumps([good], ensure_ascii=False) + "[\n" + json.dumps({**good, "url": "http://a.example.com.tw/2"},
           ensure_ascii=False) + ',\n{"url": "http://a.example.com.tw/3", "title": "失言"效應", "content": "x"}]')
    objs, lost = vs.scan_json_objects(raw)
    assert [o["url"] for o in objs] == ["http://a.example.com.tw/1", "http://a.example.com.tw/2"]
    assert lost == 1


def test_hkcnews_article_and_cctv_stories():
    md = ('---\ntitle: "t"\nurl: "https://web.archive.org/web/1/https://www.hkcnews.com/article/1/x"\n'
          'original_url: "https://www.hkcnews.com/article/1/x"\n---\n\n# 標題\n\n<figure>\n<img src="a.jpg">\n'
          f'</figure>\n\n{BODY}\n\n[連結文字](/web/1/https://x)\n\n---\n\n請加入成為眾新聞的月費訂戶，長期支持我們的工作。\n\n**博客**\n')
    url, text = vs.hk_article(md)
    assert url == "https://www.hkcnews.com/article/1/x"
    assert text.splitlines()[0] == "標題" and BODY in text and "連結文字" in text
    assert "月費訂戶" not in text and "img" not in text and "博客" not in text
    cctv = ("# 《新闻联播》（20220102）\n\n## 新闻摘要\n\n1.摘要\n\n## 详细新闻\n\n### 第一条\n\n<!--repaste.body.begin-->\n\n"
            "**央视网消息**（新闻联播）：正文一。\n\n[查看原文](https://tv.cctv.com/1.shtml)\n\n### 第二条\n\n正文二。\n")
    assert list(vs.cctv_stories(cctv)) == [("https://tv.cctv.com/1.shtml", "第一条\n正文一。"), (None, "第二条\n正文二。")]


def test_taiwan_extraction_from_a_git_snapshot(tmp_path):
    repo = tmp_path / "crawlers"
    repo.mkdir()
    rec = {"url": "http://news.ltn.com.tw/news/1", "title": "標題", "content": BODY}
    (repo / "liberty.json").write_text(json.dumps([rec, rec, {**rec, "url": "http://news.ltn.com.tw/news/2",
                                                               "content": "短"}], ensure_ascii=False), encoding="utf-8")
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    run("add", ".")
    run("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    counts: dict = {}
    original = vs.TW
    vs.TW = ("test", [(commit, ["liberty.json"])])
    try:
        rows = list(vs.extract_tw(str(repo / ".git"), counts))
    finally:
        vs.TW = original
    assert [r["url"] for r in rows] == ["http://news.ltn.com.tw/news/1"]
    assert counts == {"tw_liberty.json_records": 3, "tw_liberty.json_dropped_malformed": 0,
                      "tw_liberty.json_kept": 1, "tw_liberty.json_dropped_duplicate_url": 1,
                      "tw_liberty.json_dropped_short": 1}
