"""zhwiki-like pages and FineWeb2-like rows for the ingest tests, written by the tests themselves.

The markup follows real zhwiki articles: NoteTA, -{H|}- rules, -{zh-hans;zh-tw}- choices, {{lang}} and
link templates inside running text, infobox, navbox, citations in <ref>, tables, File:/Category:/
interlanguage links, and reference sections with subsections in both scripts.
"""

from __future__ import annotations

import json
from pathlib import Path

ARTICLE = """{{NoteTA
|G1=IT
|1=zh-hans:鼠标;zh-tw:滑鼠;
|2=zh-cn:悉尼;zh-tw:雪梨;zh-hk:悉尼;
}}
{{Infobox software
| name = 範例軟件
| developer = [[某公司]]
| released = {{Start date|2001|1|1}}
}}
-{H|zh-hans:内存;zh-hant:記憶體;zh-tw:記憶體;}-
'''软件'''（{{lang|en|software}}，{{lang-fr|logiciel}}）是一系列按照特定顺序组织的[[计算机|電腦]]数据与指令。-{于}-尔班的工程师在悉尼使用鼠标和内存。<ref>{{cite web |url=https://example.org/a |title=來源}}</ref>
-{zh-hans:信息;zh-hant:資訊;zh-tw:資訊科技}-与-{zh-hans:网络;zh-hk:網絡}-，以及-{R|软件}-；{{le|阿兰·图灵|Alan Turing}}与{{tsl|en|Grace Hopper|葛麗絲·霍普}}都曾研究{{link-en|編譯器|Compiler}}。
[[File:Example.png|thumb|右|图片说明[[链接]]]]
{| class="wikitable"
|-
! 表头 !! 内容
|-
| 表格 || 不应出现
|}
== 历史 ==
最早的软件写在打孔卡上。<ref name="a">书</ref>
=== 早期 ===
早期的程序员使用{{nowrap|机器语言}}。
== 参考文献 ==
{{reflist}}
=== 书目 ===
* 某书，2001年。
== 外部連結 ==
* [https://example.org 官方网站]
{{Navbox
|name = 软件
|list1 = [[操作系统]] · [[应用软件]]
}}
[[Category:软件]]
[[en:Software]]
[[ja:ソフトウェア]]
"""

SECOND = """'''臺北市'''是[[中華民國]]的首都，-{zh-hans:位于;zh-tw:位於}-[[臺灣]]北部。
== 地理 ==
臺北盆地四周環山。
== 注釋與參考資料 ==
<references />
== 相关条目 ==
* [[新北市]]
"""


def wiki_pages() -> list[dict]:
    """Articles plus a redirect, a disambiguation page and a template page (dropped with reasons)."""
    return [
        {"title": "軟體", "id": 101, "text": ARTICLE},
        {"title": "臺北市", "id": 102, "text": SECOND},
        {"title": "软件", "id": 103, "text": "#REDIRECT [[軟體]]", "redirect": "軟體"},
        {"title": "水星 (消歧義)", "id": 104, "text": "'''水星'''可以指：\n* [[水星]]\n* [[水星 (神話)]]\n{{disambig}}"},
        {"title": "Template:Navbox", "id": 105, "ns": 10, "text": "{{{1}}}"},
        {"title": "空白頁", "id": 106, "text": "{{Infobox|name=只有模板}}\n[[Category:空]]"},
    ]


def filler_pages(n: int, start: int = 1000) -> list[dict]:
    """Many small distinct articles, for multistream splitting."""
    return [{"title": f"條目{i}", "id": start + i, "text": f"'''條目{i}'''是第{i}個測試條目，-{{zh-hans:软件;zh-tw:軟體}}-編號{i}。"}
            for i in range(n)]


WEB_GOOD = (
    "台北市政府今天宣布，明年起將在各區增設公共自行車站，方便市民通勤與休閒使用。\n"
    "交通局表示，新的站點會優先設在捷運站與學校附近，並且與現有的公車路線整合，讓轉乘更加便利。\n"
    "市長在記者會上指出，這項計畫的目標是減少汽機車使用量，改善空氣品質，同時也鼓勵民眾多運動。\n"
    "有意見的民眾可以寫信到service@example.gov.tw，或撥打專線(02)2345-6789與0912-345-678洽詢。\n"
    "參考資料\n"
    "https://example.gov.tw/news/1\n"
    "https://example.gov.tw/news/2\n"
)
WEB_SPAM = "\n".join(["限時優惠快來買"] * 30)


def web_rows() -> list[dict]:
    return [
        {"text": WEB_GOOD, "id": "<urn:uuid:web-good>", "url": "https://news.example.com.tw/a/1",
         "language_score": 0.97, "minhash_cluster_size": 3, "dump": "CC-MAIN-2024-10", "date": "2024-02-21T12:00:00Z"},
        {"text": WEB_SPAM, "id": "<urn:uuid:web-spam>", "url": "https://shop.example.com/x", "language_score": 0.9},
        {"text": WEB_GOOD.replace("台北", "高雄"), "id": "<urn:uuid:web-low-lid>", "language_score": 0.3},
    ]


def read_documents(folder: str | Path) -> list[dict]:
    import gzip

    docs = []
    for f in sorted(Path(folder).glob("*.jsonl*")):
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt", encoding="utf-8") as fh:
            docs += [json.loads(line) for line in fh if line.strip()]
    return docs


# The same per-task merge the build's funnel uses.
from twbert.pipeline.funnel import merge_stage as stage_stats  # noqa: E402,F401


def assert_reconciles(steps: list[dict]) -> None:
    """total == forwarded + dropped and dropped == sum(dropped_<reason>) for every twbert step."""
    for step in steps:
        s = step["stats"]
        if "total" not in s or "Jsonl" in step["name"]:
            continue
        dropped = s.get("dropped", 0)
        assert s["total"] == s.get("forwarded", 0) + dropped, (step["name"], s)
        assert dropped == sum(v for k, v in s.items() if k.startswith("dropped_")), (step["name"], s)
