"""Wikitext → Taiwan-form text: conversion markup, page rules, markup stripping, reference sections."""

from __future__ import annotations

import mwparserfromhell
import pytest
from _wiki_pages import ARTICLE, SECOND, assert_reconciles, read_documents, stage_stats, wiki_pages
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from twbert.dumps import write_fineweb_parquet, write_wiki_dump
from twbert.pipeline.fineweb import FineWebReader
from twbert.pipeline.references import ReferenceHeadings, WebReferenceStripper
from twbert.pipeline.wiki import WikiDumpReader
from twbert.pipeline.wikitext import Wikitext, WikitextCleaner, parse_rules


@pytest.fixture(scope="module")
def w():
    return Wikitext()


def test_choice_prefers_zh_tw_then_hant_then_hk_then_converted_hans(w):
    assert w.render("-{zh-hans:信息;zh-hant:資訊;zh-tw:資訊科技;}-") == "資訊科技"
    assert w.render("-{zh-hans:信息;zh-hant:資訊;}-") == "資訊"
    assert w.render("-{zh-hans:网络;zh-hk:網絡;}-") == "網絡"
    assert w.render("-{zh-cn:网络;zh-mo:網絡（澳）;}-") == "網絡（澳）"
    assert w.render("-{zh-hans:鼠标;}-") == "滑鼠"  # only Simplified: converted (MediaWiki zh-tw)


def test_chosen_variant_is_never_reconverted(w):
    # s2twp alone would turn 于 into 於; the author pinned 于.
    assert w.render("-{于}-尔班") == "于爾班"
    assert w.render("-{R|软件}-与软件") == "软件與軟體"
    assert w.render("-{zh-hans:于;zh-tw:于}-是") == "于是"


def test_page_rules_apply_before_the_converter(w):
    text = "-{H|zh-hans:博客;zh-tw:部落格;zh-hk:網誌;}-我寫博客。"
    assert w.render(text) == "我寫部落格。"
    # Without the rule MediaWiki's zh-tw table keeps 博客.
    assert w.render("我寫博客。") == "我寫博客。"
    noteta = "{{NoteTA|G1=IT|1=zh-hans:打印机;zh-tw:印表機;|2=zh-cn:寿司;zh-tw:壽司飯;}}\n打印机和寿司。"
    assert w.render(noteta) == "印表機和壽司飯。"
    assert w.render("-{A|zh-hans:原子笔;zh-tw:原子筆;}-，又名原子笔") == "原子筆，又名原子筆"
    assert w.render("-{H|巴士=>zh-tw:公車;}-坐巴士") == "坐公車"


def test_variant_flags_and_hidden_markup(w):
    assert w.render("甲-{zh-hans;zh-hant|乙}-丙") == "甲乙丙"
    assert w.render("甲-{zh-hans|乙}-丙") == "甲丙"
    assert w.render("甲-{T|zh-hans:标题;zh-tw:標題}-丙") == "甲丙"


def test_parse_rules():
    assert parse_rules("zh-hans:A;zh-tw:B;") == [(None, "zh-hans", "A"), (None, "zh-tw", "B")]
    assert parse_rules("X=>zh-tw:Y;X=>zh-cn:Z") == [("X", "zh-tw", "Y"), ("X", "zh-cn", "Z")]
    assert parse_rules("plain text") == []


def test_links_files_categories_interlanguage(w):
    assert w.render("[[计算机|電腦]]與[[臺灣]]和[[:Category:軟體|軟體分類]]") == "電腦與臺灣和軟體分類"
    assert w.render("前[[File:A.png|thumb|說明[[連結]]]][[檔案:B.jpg]][[Category:X]][[分類:Y]][[en:Foo]][[zh-yue:Bar]]後") == "前後"
    assert w.render("[[wikt:詞|詞]]與[https://example.org 網站]與https://example.org") == "詞與網站與"


def test_inline_templates_keep_visible_text(w):
    text = "'''软件'''（{{lang|en|software}}，{{lang-fr|logiciel}}）由{{le|阿兰·图灵|Alan Turing}}、{{tsl|en|Grace Hopper|葛麗絲·霍普}}、{{link-en|編譯器|Compiler}}與{{nowrap|机器语言}}"
    out = w.render(text)
    assert out == "軟體（software，logiciel）由阿蘭·圖靈、葛麗絲·霍普、編譯器與機器語言"
    # mwparserfromhell's strip_code loses the template text and leaves the empty brackets behind.
    assert "（，）" in mwparserfromhell.parse(text).strip_code()


def test_templates_refs_tables_dropped(w):
    out = w.render(ARTICLE)
    for marker in ("-{", "}-", "{{", "}}", "[[", "]]", "<ref", "|", "表格", "developer", "官方网站", "官方網站", "某書", "Navbox"):
        assert marker not in out, marker
    assert out.startswith("軟體（software，logiciel）是一系列")
    assert "于爾班的工程師在雪梨使用滑鼠和記憶體。" in out
    assert "資訊科技與網絡，以及软件；阿蘭·圖靈與葛麗絲·霍普都曾研究編譯器。" in out
    assert "最早的軟體寫在打孔卡上。" in out and "早期的程式設計師使用機器語言。" in out


def test_reference_sections_and_subsections_dropped(w):
    out = w.render(SECOND)
    assert out == "臺北市是中華民國的首都，位於臺灣北部。\n\n臺北盆地四周環山。"
    text = "正文。\n== 參考 文獻 ==\n* 甲\n=== 子節 ===\n乙\n== 後記 ==\n丙。\n==延伸阅读==\n丁"
    assert w.render(text) == "正文。\n\n丙。"
    assert w.render("正文。\n== -{zh-hans:参考资料;zh-tw:參考資料}- ==\n* 甲") == "正文。"


def test_reference_headings_normalisation():
    refs = ReferenceHeadings()
    for h in ("參考資料", "参考资料", " 參考 資料 ", "【參考資料】", "外部链接", "注釋與參考文獻", "参考文献和外部链接", "References", "See also"):
        assert h in refs, h
    for h in ("歷史", "參考價值", "來源與發展", ""):
        assert h not in refs, h
    assert "附錄" in ReferenceHeadings(["附錄"]) and "參考資料" not in ReferenceHeadings(["附錄"])


def test_mixed_script_reference_headings(w):
    # Real zhwiki headings mix Simplified and Traditional forms in one heading.
    refs = ReferenceHeadings()
    for h in ("参見", "註釋及参考資料", "參考资料", "外部链結", "延伸閲讀"):
        assert h in refs, h
    assert "歷史沿革" not in refs and "参考價值" not in refs
    text = "正文。\n== 参見 ==\n* [[化學]]\n== 註釋及参考資料 ==\n* ISBN 978-957-00-0000-0\n"
    assert w.render(text) == "正文。"
    cut = WebReferenceStripper().strip
    assert cut("正文第一段。\n正文第二段。\n参見\n化學") == ("正文第一段。\n正文第二段。", 2)


def test_headings_become_paragraph_breaks():
    text = "甲。\n== 歷史 ==\n乙。"
    assert Wikitext().render(text) == "甲。\n\n乙。"
    assert Wikitext(keep_headings=True).render(text) == "甲。\n\n歷史\n\n乙。"
    assert Wikitext(extra_inline_templates={"my-term": "2"}).render("{{my-term|x|詞}}") == "詞"


def test_cleaner_step_in_a_pipeline(tmp_path):
    write_wiki_dump(tmp_path / "in" / "zhwiki.xml.bz2", wiki_pages())
    rows = [{"text": "網頁文字 -{不動}- {{不是模板}}", "id": "web-1"}]
    write_fineweb_parquet(tmp_path / "web" / "a.parquet", rows)
    out, logs = tmp_path / "out", tmp_path / "logs"
    LocalPipelineExecutor(
        [WikiDumpReader(str(tmp_path / "in")), FineWebReader(str(tmp_path / "web")), WikitextCleaner(), JsonlWriter(str(out))],
        tasks=2, workers=1, logging_dir=str(logs),
    ).run()
    docs = {d["id"]: d for d in read_documents(out)}
    assert set(docs) == {"zhwiki/101", "zhwiki/102", "web-1"}
    assert docs["web-1"]["text"] == rows[0]["text"]  # web documents pass through untouched
    steps = stage_stats(logs)
    cleaner = steps[2]["stats"]
    assert cleaner["dropped_empty"] == 1  # the infobox-only page
    assert cleaner["ref_sections_stripped"] >= 4
    assert_reconciles(steps)


def test_cleaner_pickles_without_opencc_handle():
    import pickle

    c = WikitextCleaner()
    list(c.run([Document(text="軟件", id="1", metadata={"source": "wiki"})]))
    c2 = pickle.loads(pickle.dumps(c))
    assert [d.text for d in c2.run([Document(text="软件", id="2", metadata={"source": "wiki"})])] == ["軟體"]


def test_unbalanced_markup_leaves_no_brackets(w):
    text = "開頭{{未關閉的模板|參數\n正文[[斷掉的連結與文字。<ref name=x>未關閉的註腳\n結尾]]。-{ 殘留"
    out = w.render(text)
    for marker in ("-{", "}-", "{{", "}}", "[[", "]]", "<ref"):
        assert marker not in out, (marker, out)
    assert "正文" in out and "結尾" in out


def test_hyphen_between_templates_is_not_conversion_markup(w):
    # MediaWiki reads `-{` only after templates are expanded: `-{{` opens a template, `}}-` closes one.
    assert w.render("{{lang|en|A}}-{{lang|en|B}}-{{lang|en|C}}") == "A-B-C"
    assert w.render("-{R|{{lang|en|A}}}-與-{X{{lang|en|B}}-C}-") == "A與XB-C"


def test_only_wikipedia_language_codes_are_interlanguage_links(w):
    assert w.render("[[Re:從零開始的異世界生活]]是輕小說") == "Re:從零開始的異世界生活是輕小說"
    assert w.render("[[CSI:犯罪現場]]與[[CSI:犯罪現場|影集]]") == "CSI:犯罪現場與影集"
    assert w.render("前[[EN:Foo]][[ja:バー]][[zh-min-nan:Bar]][[Simple:Baz]]後") == "前後"


def test_variant_codes_are_case_insensitive(w):
    assert w.render("-{zh-TW:軟體;zh-CN:软件}-") == "軟體"
    assert w.render("-{ZH-HANS:鼠标;ZH-HANT:滑鼠}-") == "滑鼠"
    assert w.render("-{H|zh-CN:悉尼;zh-TW:雪梨;}-我在悉尼。") == "我在雪梨。"


def test_date_and_japanese_templates_keep_their_text(w):
    assert w.render("甲（{{bd|1900年|1月1日|2000年|1月1日}}）") == "甲（1900年1月1日—2000年1月1日）"
    assert w.render("乙（{{BD|1950年|7月13日|||catIdx=M}}）") == "乙（1950年7月13日—）"
    assert w.render("生於{{birth date and age|1950|01|1|df=y}}") == "生於1950年1月1日"
    assert w.render("生於{{Birth date|1950|1|1}}，卒於{{death date and age|2000|12|31|1950|1|1}}") == "生於1950年1月1日，卒於2000年12月31日（50歲）"
    assert w.render("{{death date|2000|5}}") == "2000年5月"
    assert w.render("日語{{lj|日本語}}") == "日語日本語"


class _FullParse(Wikitext):
    """The renderer on mwparserfromhell's own tree, every node built: the reference for the fast path."""

    def parse(self, wikitext):
        return mwparserfromhell.parse(wikitext)


# Each case puts the fast path (wikiparse.py: dropped nodes left unbuilt, flat links/templates/tags)
# beside markup that forces a full build, in zhwiki's own formats.
FAST_PATH_CASES = [
    "[[Foo{{dropped|x}}|顯示]]與[[Bar{{lang|en|y}}]]、[[a|]]、[[臺北 (城市)|]]、[[:File:X.png]]、[[:Category:甲]]",
    "[[File:X.png|thumb|說明[[連結]]{{lang|en|cap}}]][[Category:甲|乙]][[en:Foo]]前[[ja:バー]]後",
    "{{NoteTA|G1=IT|1=zh-hans:鼠标;zh-tw:滑鼠;}}我的鼠标",
    "{{noteTA\n|1=zh-hans:鼠标;zh-tw:[[滑鼠]];\n|2=zh-cn:悉尼;zh-tw:雪梨;\n}}鼠标在悉尼",
    "{{lang|en|a|2=b}}{{lang|en}}{{lang|en|  }}{{lang| en |x|2=y|2=z}}{{Lang-fr|logiciel}}{{lang|en|[[連結]]文字}}",
    "{{convert|5|km|mi}}與{{convert|a=1|5|km}}，{{tsl|en|Foo|福}}{{le|阿兰|Alan}}{{link-en|編譯器|Compiler}}",
    "'''粗體'''與''斜體''<code>碼</code><span style=\"color:red\">紅</span><br/><br>行<hr/>\n----\n文",
    "<nowiki>[[不是連結]]</nowiki><p>段</p><div class=x>塊</div><small>{{lang|en|x}}</small><b title=\"{{x}}\">粗</b>",
    "{| class=x\n|甲\n|}\n* 項\n# 項\n; 詞 : 釋\n<math>x^2</math><gallery>\nA.png|甲\n</gallery>",
    "網址 http://example.org/x 文字 [http://e.org 標題] [http://e.org] [[頁|http://a.b/c 文]]",
    "前言\n== 參考資料 ==\n{{lang|en|counted?}} '''x'''\n=== 書目 ===\n[[甲]]\n== 下一節 ==\n正文{{lang|en|y}}",
    "{{bd|1900年|1月1日|2000年|1月1日}}{{birth date and age|1950|01|1|df=y}}{{death date and age|2000|12|31|1950|1|1}}",
    "&nbsp;&amp;&#x4E2D;&bogus;{{{參數|預設}}}<!-- 註解 -->{{Infobox|a=[[b]]|c={{d|e}}}}{{#if:x|y}}{{subst:z}}",
    "-{zh-hans:[[软件]];zh-tw:[[軟體|軟體]]}-與-{R|{{lang|en|A}}}-，-{H|zh-hans:内存;zh-tw:記憶體;}-内存",
    "開頭{{未關閉的模板|參數\n正文[[斷掉的連結與文字。<ref name=x>未關閉的註腳\n結尾]]。-{ 殘留",
    "<p/>甲<div />乙<span/>丙<nowiki/>丁",
    "<b>{{lang|en|x}}</b><i>''巢''</i><ref>被切掉</ref><references/>{{Reflist}}<div>{{nowrap|不換行}}</div>",
]


@pytest.mark.parametrize("text", FAST_PATH_CASES + [ARTICLE, SECOND] + [p["text"] for p in wiki_pages()])
def test_fast_path_renders_exactly_as_the_full_tree(text):
    fast, full = Wikitext(), _FullParse()
    fast.counts, full.counts = {}, {}
    assert fast.render(text) == full.render(text)
    assert fast.counts == full.counts
    code = fast.parse(text)
    assert str(code) == text  # nodes left unbuilt or flat still read as their source


def test_fast_path_is_taken():
    from mwparserfromhell.nodes import Text

    from twbert.pipeline.wikiparse import FlatHeading, FlatLink, FlatTag, FlatTemplate, Unbuilt

    code = Wikitext().parse("{{Infobox|a=1}}[[甲|乙]]{{lang|en|x}}'''粗'''[[File:a.png|說明]]\n== 節 ==\n")
    kinds = [type(node) for node in code.nodes]
    assert kinds == [Unbuilt, FlatLink, FlatTemplate, FlatTag, Unbuilt, Text, FlatHeading, Text]
