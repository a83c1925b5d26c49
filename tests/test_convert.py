"""The converter setting, conversion groups and the artifact detector (pipeline/convert.py, cgroups.py, artifacts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _wiki_pages import assert_reconciles, read_documents, stage_stats
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from twbert.config import defaults
from twbert.dumps import write_fineweb_parquet, write_wiki_dump
from twbert.errors import UsageError
from twbert.pipeline.artifacts import METADATA_KEY, ArtifactDetector, ArtifactFilter, artifact_summary
from twbert.pipeline.cgroups import alias_target, group_name, load_extract, load_groups, parse_module
from twbert.pipeline.convert import Converter, RuleTable, default_phrases, phrase_pairs
from twbert.pipeline.wikitext import Wikitext, WikitextCleaner

# Simplified sentences where OpenCC s2twp's phrase tables match across words or in the wrong sense.
TRAPS = {
    "研究对象是鸟类。": "研究物件",
    "这个插件可以扩展浏览器。": "擴充套件",
    "少数组织反对。": "少陣列織",
    "这项技术被发明于1990年。": "被髮明",
    "布尔巴基学派": "布林巴基",
}


# ---------------------------------------------------------------- converter settings

def test_mediawiki_setting_writes_no_s2twp_artifacts():
    mw, s2twp, det = Converter("mediawiki"), Converter("s2twp"), ArtifactDetector()
    for text, artifact in TRAPS.items():
        assert artifact in s2twp.convert(text)
        assert det.count(mw.convert(text)) == 0, mw.convert(text)
    assert mw.convert("软件和鼠标，于是头发") == "軟體和滑鼠，於是頭髮"  # MediaWiki's own Taiwan words and forms


def test_phrase_layer_adds_only_safe_words():
    plus = Converter("mediawiki+phrases")
    assert plus.convert("我写博客，清理缓存") == "我寫部落格，清理快取"
    assert plus.convert("研究对象和体内存在的问题") == "研究對象和體內存在的問題"  # context-dependent words left out
    sources = {s for s, _ in default_phrases()}
    for left_out in ("对象", "文件", "程序", "项目", "支持", "运行", "集成", "函数", "扩展", "数组", "内存", "短信"):
        assert left_out not in sources


def test_phrases_extend_by_config_and_reject_malformed_entries():
    conv = Converter("mediawiki+phrases", ["奶酪 起司", ["冰激凌", "冰淇淋"]])
    assert conv.convert("奶酪和冰激凌") == "起司和冰淇淋"
    assert len(phrase_pairs(["奶酪 起司"])) == len(default_phrases()) + 1
    with pytest.raises(UsageError, match=r"convert.phrases\[0\]"):
        Converter("mediawiki+phrases", ["只有一個詞"])
    with pytest.raises(UsageError, match=r"convert.phrases\[0\]"):
        Converter("mediawiki+phrases", [["a"]])
    with pytest.raises(UsageError, match="only `mediawiki\\+phrases`"):
        Converter("s2twp", ["奶酪 起司"])


def test_any_opencc_config_and_a_clear_error_for_unknown_settings():
    assert Converter("s2t").convert("着手") == "着手"
    assert Converter("s2tw").convert("着手") == "著手"
    with pytest.raises(UsageError, match="no-such-config"):
        Converter("no-such-config")


def test_rule_table_is_leftmost_longest_and_protects_targets():
    table = RuleTable({"数据": "數據", "数据库": "資料庫", "库存": "存貨"})
    kept = []

    def protect(t):
        kept.append(t)
        return f"<{len(kept) - 1}>"

    assert table.apply("数据库存在数据", protect) == "<0>存在<1>"
    assert kept == ["資料庫", "數據"]
    assert not RuleTable({}) and RuleTable({}).apply("x", protect) == "x"


# ---------------------------------------------------------------- conversion groups in wikitext

GROUPS = {"IT": ["zh-cn:对象; zh-tw:物件;", "zh-cn:内存; zh-tw:記憶體;", "zh-cn:博客; zh-tw:部落格;"],
          "Sci": ["zh-hans:激光; zh-tw:鐳射;"]}


def test_noteta_groups_apply_and_page_rules_win():
    w = Wikitext(groups=GROUPS)
    assert w.render("{{NoteTA|G1=IT}}面向对象的内存与博客") == "面向物件的記憶體與部落格"
    # The same text without the group: MediaWiki's table alone.
    assert w.render("面向对象的内存与博客") == "面向對象的內存與博客"
    # The page's own rule beats the group's for the same string.
    assert w.render("{{NoteTA|G1=IT|1=zh-cn:博客;zh-tw:網誌;}}博客") == "網誌"
    assert w.render("{{NoteTA|G1=IT|G2=Sci}}激光和博客") == "鐳射和部落格"


def test_unknown_groups_are_counted_not_fatal():
    w = Wikitext(groups=GROUPS)
    w.counts = {}
    assert w.render("{{NoteTA|G1=不存在|G2=IT}}对象") == "物件"
    assert w.counts["unknown_groups"] == 1 and w.counts["groups_applied"] == 1


LUA_IT = """local Item = require('Module:CGroup/core').Item;
-- Item('old', 'zh-cn:注释掉; zh-tw:不算;'),
return {
name = 'IT',
description = '資訊科技',
content = {
	{ type = 'text', text = [[說明文字]] },
	Item('object', 'zh-cn:对象; zh-tw:物件;'),
	Item(nil, 'zh-cn:内存; zh-tw:記憶體;'),
	{ type = 'item', original = 'blog', rule = 'zh-cn:博客; zh-tw:部落格;' },
	{ rule = "存取=>zh-cn:访问; 存取=>zh-tw:存取;", original = "access" },
},
}
"""


def test_cgroup_modules_parse_items_fields_and_aliases():
    assert parse_module(LUA_IT) == ["zh-cn:对象; zh-tw:物件;", "zh-cn:内存; zh-tw:記憶體;",
                                    "zh-cn:博客; zh-tw:部落格;", "存取=>zh-cn:访问; 存取=>zh-tw:存取;"]
    assert alias_target("return require('Module:CGroup/IT');") == "IT"
    assert alias_target(LUA_IT) is None
    assert group_name("Module:CGroup/IT") == "IT" and group_name("模块:CGroup/IT") == "IT"
    assert group_name("Module:CGroup/IT/doc") is None and group_name("Module:CGroup/core") is None


def _module_pages() -> list[dict]:
    pages = [{"title": f"文章{i}", "id": i, "text": f"第{i}篇。"} for i in range(1, 250)]
    pages[120] = {"title": "Module:CGroup/IT", "id": 121, "ns": 828, "text": LUA_IT}
    pages[180] = {"title": "Module:CGroup/資訊科技", "id": 181, "ns": 828, "text": "return require('Module:CGroup/IT')"}
    pages[60] = {"title": "Module:CGroup/IT/doc", "id": 61, "ns": 828, "text": "Item('x', 'zh-cn:甲;zh-tw:乙;')"}
    pages.append({"title": "面向對象", "id": 900, "text": "{{NoteTA|G1=資訊科技}}面向对象的内存，访问博客。"})
    return pages


@pytest.mark.parametrize("multistream", [True, False])
def test_groups_are_read_from_the_dump_in_a_first_pass(tmp_path, multistream):
    dump, _ = write_wiki_dump(tmp_path / "in" / "zhwiki-pages-articles.xml.bz2", _module_pages(), multistream=multistream)
    groups = load_groups("dump", [str(dump)])
    assert set(groups) == {"IT", "資訊科技"}
    assert groups["資訊科技"] == groups["IT"] and len(groups["IT"]) == 4
    out, logs = tmp_path / "out", tmp_path / "logs"
    from twbert.pipeline.wiki import WikiDumpReader

    LocalPipelineExecutor(
        [WikiDumpReader(str(dump)), WikitextCleaner(cgroups="dump", dump_paths=[str(dump)]), JsonlWriter(str(out))],
        tasks=1, workers=1, logging_dir=str(logs),
    ).run()
    docs = {d["id"]: d["text"] for d in read_documents(out)}
    # 存取=>zh-tw:存取 maps only 存取: 访问 takes the table's 訪問.
    assert docs["zhwiki/900"] == "面向物件的記憶體，訪問部落格。"
    assert stage_stats(logs)[1]["stats"]["cgroups_loaded"] == 2
    assert_reconciles(stage_stats(logs))


def test_pinned_extract_needs_its_revision(tmp_path):
    good = tmp_path / "cgroups.json"
    good.write_text(json.dumps({"source": "test", "revision": "r1", "groups": {"IT": ["zh-cn:对象;zh-tw:物件;"]},
                                "aliases": {"資訊": "IT"}}), encoding="utf-8")
    assert load_extract(good) == {"IT": ["zh-cn:对象;zh-tw:物件;"], "資訊": ["zh-cn:对象;zh-tw:物件;"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"groups": {}}), encoding="utf-8")
    with pytest.raises(UsageError, match="revision"):
        load_extract(bad)
    with pytest.raises(UsageError, match="not found"):
        load_groups(str(tmp_path / "missing.json"))
    assert load_groups(None) == {}


# ---------------------------------------------------------------- artifacts

def test_artifacts_count_once_and_respect_exceptions():
    d = ArtifactDetector()
    assert d.count("他明瞭如何操作。") == 0  # 明瞭如何 is correct Taiwan text
    assert d.count("書中說明瞭如何操作。") == 1  # 說明了如何, converted wrongly
    assert d.count("鳥群聚整合群") == 1  # 聚整合群 and 聚整合 overlap: one artifact
    assert d.count("實體記憶體在主機板上") == 0
    assert d.rate("研究物件" + "。" * 9996) == pytest.approx(1.0)
    assert ArtifactDetector(["網路卡片"]).count("網路卡片") == 1
    with pytest.raises(UsageError, match="extra"):
        ArtifactDetector([""])


def test_artifact_list_has_no_hits_in_real_taiwan_text():
    root = Path(__file__).resolve().parents[1]
    # ../shared next to the checkout (a worktree one level deeper has it two up).
    found = [p for p in (root / "shared", root.parent / "shared", root.parent.parent / "shared")
             if (p / "data" / "drcd_test.json").is_file()]
    if not found:
        pytest.skip("../shared/data/drcd_test.json (Taiwan Wikipedia paragraphs) not present")
    drcd = found[0] / "data" / "drcd_test.json"
    data = json.loads(drcd.read_text(encoding="utf-8"))
    text = "\n".join(p["context"] for a in data["data"] for p in a["paragraphs"])
    d = ArtifactDetector()
    assert len(text) > 100_000
    assert d.hits(text) == []


def test_artifact_filter_tags_every_document_and_drops_above_threshold():
    docs = [Document(text="研究物件" + "好" * 96, id="a", metadata={"source": "web"}),
            Document(text="乾淨的文字。" * 10, id="b", metadata={"source": "wiki"})]
    tagger = ArtifactFilter()
    kept = list(tagger.run(iter(docs)))
    assert [d.id for d in kept] == ["a", "b"]
    assert kept[0].metadata[METADATA_KEY] == 100.0 and kept[1].metadata[METADATA_KEY] == 0.0
    strict = ArtifactFilter(max_per_10k=50)
    assert [d.id for d in strict.run(iter(docs))] == ["b"]
    assert strict.stats["dropped_convert_artifacts"].total == 1
    with pytest.raises(UsageError, match="max_per_10k"):
        ArtifactFilter(max_per_10k=-1)


def test_artifact_summary_per_source_and_tier():
    docs = [{"text": "研究物件與擴充套件" + "字" * 91, "metadata": {"source": "web", "tier": "tw_converted"}},
            Document(text="乾淨" * 50, id="w", metadata={"source": "wiki"})]
    s = artifact_summary(docs)
    assert list(s) == ["web/tw_converted", "wiki/-"]
    web = s["web/tw_converted"]
    assert web["artifacts"] == 2 and web["per_100k"] == 2000.0 and web["docs_with"] == 1
    assert web["top"] == [["研究物件", 1], ["擴充套件", 1]] and "研究物件" in web["examples"][0]
    assert s["wiki/-"]["artifacts"] == 0


# ---------------------------------------------------------------- the build's steps

def test_build_config_wires_one_setting_and_tags_documents(tmp_path):
    from twbert.pipeline.ingest import cleaning, readers

    cfg = defaults("build")
    assert cfg["convert"]["setting"] == "mediawiki" and "opencc" not in cfg["wiki"]
    write_wiki_dump(tmp_path / "in" / "zhwiki.xml.bz2", [{"title": "甲", "id": 1, "text": "研究对象是软件。" * 20}])
    write_fineweb_parquet(tmp_path / "web" / "a.parquet", [{"text": "研究对象是软件。" * 20, "id": "w1"}])
    cfg["inputs"] = {"wiki": [str(tmp_path / "in")], "fineweb": [str(tmp_path / "web")]}
    for key in ("quality", "pii", "variant"):
        cfg[key]["enabled"] = False
    steps = readers(cfg) + cleaning(cfg)
    assert isinstance(steps[-1], ArtifactFilter)
    out, logs = tmp_path / "out", tmp_path / "logs"
    LocalPipelineExecutor(steps + [JsonlWriter(str(out))], tasks=1, workers=1, logging_dir=str(logs)).run()
    docs = read_documents(out)
    assert len(docs) == 2 and all(METADATA_KEY in d["metadata"] for d in docs)
    wiki = next(d for d in docs if d["metadata"]["source"] == "wiki")
    assert wiki["text"].startswith("研究對象是軟體。") and wiki["metadata"][METADATA_KEY] == 0.0


def test_rules_catch_their_forms_in_either_script():
    # The page lists the Simplified form; an editor typed its Traditional spelling elsewhere.
    w = Wikitext()
    assert w.render("-{H|zh-cn:能级;zh-tw:能階;}-能级與能級") == "能階與能階"
    assert Wikitext(groups={"Phys": ["zh-cn:纠缠; zh-tw:纏結;"]}).render("{{NoteTA|G1=Phys}}量子糾纏") == "量子纏結"
    # Unidirectional rules stay exact.
    assert w.render("-{H|巴士=>zh-tw:公車;}-巴士與公交") == "公車與公交"


def test_a_bad_convert_section_fails_before_any_task(tmp_path):
    from twbert.pipeline.ingest import cleaning

    for key, value, match in (("setting", "s2twx", "s2twx"), ("phrases", ["x"], "convert.phrases"),
                              ("cgroups", str(tmp_path / "none.json"), "not found")):
        cfg = defaults("build")
        cfg["convert"][key] = value
        with pytest.raises(UsageError, match=match):
            cleaning(cfg)
