"""Variant features and the tier policy, on sentences written for these tests.

Four kinds of text: Taiwan usage, Mainland usage written in Traditional characters (the hard case:
a character-set test passes it), Hong Kong / Cantonese, and Simplified; plus empty and non-Han text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from twbert import config
from twbert.errors import UsageError
from twbert.pipeline.policy import DEFAULTS, VariantPolicy, decide, to_taiwan
from twbert.pipeline.variant import (
    HostMap,
    VariantFeatures,
    VariantScorer,
    char_sets,
    conversion_forms,
    converter,
    domain_hint,
    load_host_map,
    steps,
)

TAIWAN = [
    "這款手機的螢幕很清楚，下載影片也很快，網路訊號在捷運上都不錯。",
    "我們公司的軟體團隊正在改善伺服器的記憶體用量，預設設定會在下個版本更新。",
    "使用者可以在應用程式裡點選連結，查看最新的資訊和高畫質影片。",
    "週末我和朋友騎腳踏車去淡水，傍晚在河邊吃了阿給和魚丸湯。",
    "政府今天公布新的補助方案，民眾可以上網查詢資格，也能到區公所辦理。",
]
MAINLAND_IN_TRADITIONAL = [
    "這款手機的屏幕很清楚，下載視頻也很快，網絡信號在地鐵上都不錯。",
    "我們公司的軟件團隊正在優化服務器的內存佔用，默認配置會在下個版本更新。",
    "用戶可以在應用裡點擊鏈接，查看最新的信息和高清視頻。",
]
CANTONESE = [
    "我哋今日去咗旺角食飯，佢話啲嘢好好食，下次再嚟。",
    "你係咪唔記得帶鎖匙？我喺樓下等緊你，快啲落嚟啦。",
]
SIMPLIFIED = [
    "这款手机的屏幕很清楚，下载视频也很快，网络信号在地铁上都不错。",
    "我们公司的软件团队正在优化服务器的内存占用，默认配置会在下个版本更新。",
]
EDGE = ["", "   \n\t ", "The quick brown fox jumps over 13 lazy dogs.", "😀🎉👍", "123-456",
        "Python 3.12 版本的新功能包括更好的錯誤訊息。", "OK，好", "\ue000軟件\ue001"]


@pytest.fixture(scope="module")
def vcfg():
    return config.defaults("build")["variant"]


@pytest.fixture(scope="module")
def features(vcfg):
    t = vcfg["terms"]
    return VariantFeatures(t["mainland_extra"], t["mainland_ignore"], t["hk_extra"])


def test_char_sets_come_from_opencc_tables():
    trad, simp = char_sets()
    assert {"們", "這", "會", "體", "網", "視"} <= trad
    assert {"们", "这", "会", "体", "网", "视"} <= simp
    assert not trad & simp
    # Taiwan's standard forms that OpenCC's standard writes otherwise (群/羣, 峰/峯) are not Simplified
    assert not set("群峰床秘") & simp
    # shared characters are in neither set
    assert not {"我", "的", "在", "后", "面"} & (trad | simp)


def test_han_ratio(features):
    for s in TAIWAN + MAINLAND_IN_TRADITIONAL + CANTONESE + SIMPLIFIED:
        assert features(s)["han_ratio"] > 0.8
    assert features("")["han_ratio"] == 0.0
    assert features("The quick brown fox.")["han_ratio"] == 0.0
    mixed = features("Python 3.12 版本的新功能")["han_ratio"]
    assert 0.2 < mixed < 0.6


def test_trad_ratio_cannot_tell_mainland_in_traditional(features):
    for s in TAIWAN + MAINLAND_IN_TRADITIONAL:
        assert features(s)["trad_ratio"] == 1.0
    for s in SIMPLIFIED:
        assert features(s)["trad_ratio"] == 0.0
    for s in CANTONESE:
        assert features(s)["trad_ratio"] >= 0.9
    assert features("我在你的前面")["trad_ratio"] == 0.5  # only shared characters: no evidence
    half = features("們们")["trad_ratio"]
    assert half == 0.5


def test_mainland_terms(features):
    for s in TAIWAN:
        assert features(s)["mainland_terms"] == 0.0, (s, features.mainland_hits(s))
    for s in MAINLAND_IN_TRADITIONAL + SIMPLIFIED:
        assert features(s)["mainland_terms"] > 50.0, s
    assert set(features.mainland_hits(MAINLAND_IN_TRADITIONAL[0])) >= {"屏幕", "視頻", "網絡"}
    assert set(features.mainland_hits(SIMPLIFIED[0])) >= {"屏幕", "视频", "网络"}
    for s in CANTONESE:
        assert features(s)["mainland_terms"] == 0.0
    # rate per 1,000 Han characters: one term in a 20-character sentence is 50
    one = "今天下午我在家裡整理舊的照片和網絡"
    assert features(one)["mainland_terms"] == pytest.approx(1000 / 17, abs=0.01)


def test_mainland_terms_are_what_the_opencc_round_trip_changes(features, vcfg):
    s2twp, tw2sp = converter("s2twp"), converter("tw2sp")
    for s in MAINLAND_IN_TRADITIONAL:
        assert s2twp.convert(tw2sp.convert(s)) != s
    # Diffing the round trip itself would flag Taiwan text too: it rewrites character variants
    # (公布→公佈) and words Taiwan also writes (查看→檢視, ignore-listed). The term table does not.
    changed = [s for s in TAIWAN if s2twp.convert(tw2sp.convert(s)) != s]
    assert changed and all(features.mainland_hits(s) == [] for s in changed)
    assert "查看" in vcfg["terms"]["mainland_ignore"]
    # every counted OpenCC-spelled term changes on the round trip (extras and other spellings aside)
    from twbert.pipeline.variant import opencc_table
    keys = [k for k in opencc_table("TWPhrases") if k in features.mainland_terms]
    assert len(keys) > 300
    assert all(s2twp.convert(tw2sp.convert(k)) != k for k in keys)


def test_term_lists_are_configurable():
    base = VariantFeatures()
    assert base("他在公司負責支持客戶")["mainland_terms"] > 0  # 支持 is a TWPhrases key
    tuned = VariantFeatures(mainland_extra=["抓手"], mainland_ignore=["支持"], hk_extra=["落雨"])
    assert tuned("他在公司負責支持客戶")["mainland_terms"] == 0.0
    assert tuned("這個項目的抓手是什麼")["mainland_terms"] > 0
    assert tuned("這個项目的抓手是什么")["mainland_terms"] > 0  # any spelling of an extra term
    assert tuned("明天會落雨")["hk_markers"] > 0
    assert base("明天會落雨")["hk_markers"] == 0.0


def test_hk_markers(features):
    for s in CANTONESE:
        assert features(s)["hk_markers"] > 100, s
    for s in TAIWAN + MAINLAND_IN_TRADITIONAL + SIMPLIFIED:
        assert features(s)["hk_markers"] == 0.0, (s, features.hk_hits(s))
    # HK character forms: 説 and 綫 where Taiwan writes 說 and 線
    assert features("他説地鐵綫今日停駛")["hk_markers"] > 0
    assert features("他說捷運線今天停駛")["hk_markers"] == 0.0


@pytest.mark.parametrize("url,hint", [
    ("https://www.example.com.tw/news/1", "tw"), ("http://www.moe.gov.tw", "tw"),
    ("https://www.ntu.edu.tw/a?b=c", "tw"), ("https://foo.org.tw", "tw"), ("https://shop.tw:8443/x", "tw"),
    ("http://news.example.cn/2024/01.html", "cn"), ("https://www.example.com.cn", "cn"),
    ("https://www.example.hk/", "hk"), ("https://gov.hk", "hk"), ("https://example.com.mo", "hk"),
    ("https://example.com/tw/page", "none"), ("https://tw.example.com", "none"),
    ("", "none"), (None, "none"), ("not a url", "none"), ("http://[::1", "none"),
])
def test_domain_hint(url, hint):
    assert domain_hint(url) == hint


@pytest.mark.parametrize("url,hint", [
    # major sites on generic TLDs, from the packaged host map; a subdomain inherits its site's region
    ("https://udn.com/news/story/1", "tw"), ("https://money.udn.com/x", "tw"), ("https://www.ettoday.net/n", "tw"),
    ("setn.com", "tw"), ("https://www.hkcnews.com/article/1", "hk"), ("https://news.mingpao.com/a", "hk"),
    ("https://www.hk01.com/x", "hk"), ("https://tv.cctv.com/2022/01/02/x.shtml", "cn"),
    ("http://finance.people.com.cn/n1", "cn"), ("https://news.sina.com.cn/", "cn"),
    # a subdomain entry overrides its parent; a portal's other hosts stay unlabelled
    ("https://hk.news.yahoo.com/a", "hk"), ("https://tw.news.yahoo.com/a", "tw"), ("https://news.yahoo.com/a", "none"),
    ("https://WWW.UDN.COM./x", "tw"), ("https://notudn.com/x", "none"),
])
def test_domain_hint_uses_the_host_map(url, hint):
    assert domain_hint(url) == hint


def test_host_map_is_extended_by_config(tmp_path, vcfg):
    hosts = HostMap({"myblog.example.com": "tw", "udn.com": "none", "hkcnews.com": "cn"})
    assert hosts.region("https://myblog.example.com/p/1") == "tw"
    assert hosts.region("https://a.myblog.example.com") == "tw" and hosts.region("https://example.com") == "none"
    assert hosts.region("https://udn.com/x") == "none"  # removed
    assert hosts.region("https://hkcnews.com/x") == "cn"  # overridden
    assert HostMap().region("https://udn.com/x") == "tw"  # the packaged map is not changed
    with pytest.raises(UsageError, match="variant.hosts: 'a.com'"):
        HostMap({"a.com": "jp"})
    # the build's scorer takes the config's entries; a bad one fails when the step is built
    t = vcfg["terms"]
    f = VariantFeatures(t["mainland_extra"], t["mainland_ignore"], t["hk_extra"], hosts={"myblog.example.com": "hk"})
    assert f("今天天氣很好。", "https://myblog.example.com/1")["domain_hint"] == "hk"
    scorer = VariantScorer.from_config({**vcfg, "hosts": {"myblog.example.com": "hk"}})
    assert scorer.hosts == {"myblog.example.com": "hk"}
    with pytest.raises(UsageError, match="not one of"):
        VariantScorer.from_config({**vcfg, "hosts": {"x.com": "taiwan"}})


def test_host_map_file(tmp_path):
    packaged = load_host_map()
    assert set(packaged.values()) == {"tw", "cn", "hk"}
    for host, region in {"udn.com": "tw", "ettoday.net": "tw", "setn.com": "tw", "hk01.com": "hk",
                         "hkcnews.com": "hk", "mingpao.com": "hk", "people.com.cn": "cn", "sina.com.cn": "cn",
                         "tw": "tw", "hk": "hk", "mo": "hk", "cn": "cn"}.items():
        assert packaged[host] == region, host
    bad = tmp_path / "hosts.tsv"
    bad.write_text("# comment\nudn.com\ttw\tnews\nexample.com\ttaiwan\tnews\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"hosts.tsv:3: expected"):
        load_host_map(bad)


@pytest.mark.parametrize("url,site", [
    ("https://money.udn.com/x", "udn.com"), ("http://news.ltn.com.tw/a", "ltn.com.tw"),
    ("https://www.example.com/a", "example.com"), ("https://hk.news.yahoo.com/a", "hk.news.yahoo.com"),
    ("https://a.b.example.org.hk/", "example.org.hk"), ("tv.cctv.com", "cctv.com"),
])
def test_site_of_a_url(url, site):
    assert HostMap().site(url) == site


def test_edge_cases_get_defined_scores(features):
    for s in EDGE:
        f = features(s, url="https://x.example.com.tw")
        for k in ("han_ratio", "trad_ratio", "mainland_terms", "hk_markers", "conv_forms", "cn_quotes"):
            assert isinstance(f[k], float) and math.isfinite(f[k]), (s, k, f[k])
        assert f["domain_hint"] == "tw"
    assert features("")["trad_ratio"] == 0.5
    # a private-use character in the text cannot inflate the count
    assert features("\ue000軟件\ue001")["mainland_terms"] == 500.0
    for s in EDGE[:5]:
        variant, tier, why = decide(features(s), DEFAULTS)
        assert tier == "drop" and why == "low_han_ratio"


def test_text_without_script_evidence_is_not_called_simplified(features, vcfg):
    # every character here is written alike in both scripts: trad_ratio 0.5 is no evidence
    f = features("我今天去公司上班，下午回家。")
    assert f["script_chars"] == 0 and f["trad_ratio"] == 0.5
    assert decide(f, vcfg["policy"])[:2] == ("tw", "tw")
    # the same ratio from evidence (one Traditional-only, one Simplified-only character) is mixed script
    mixed = features("我今天去公司上班，下午回家。們们")
    assert mixed["script_chars"] == 2 and mixed["trad_ratio"] == 0.5
    assert decide(mixed, vcfg["policy"]) == ("cn", "tw_converted", "guard_trad_ratio")


def test_conversion_forms(features, vcfg):
    forms = conversion_forms()
    assert {"爲", "着", "衆", "羣", "啓", "峯", "僞"} <= forms
    # Taiwan's own forms, and the forms Taiwan writes as often as its standard one, are not evidence
    assert not forms & set("為著眾群啟峰偽裏裡污")
    # Mainland wording-free text, written the way OpenCC's s2t writes it: only the forms tell
    s2t_text = "他爲大家唱着歌，羣衆都說這是他們聽過最好聽的歌，大家一起走上了山峯。"
    taiwan_text = "他為大家唱著歌，群眾都說這是他們聽過最好聽的歌，大家一起走上了山峰。"
    f, t = features(s2t_text), features(taiwan_text)
    assert f["mainland_terms"] == 0 and f["hk_markers"] == 0 and f["conv_forms"] > 100
    assert t["conv_forms"] == 0.0
    assert decide(f, vcfg["policy"]) == ("cn", "tw_converted", "guard_conv_forms")
    assert decide(t, vcfg["policy"])[:2] == ("tw", "tw")
    # in Simplified text 着 is a plain character, not a converter's form
    assert features("他笑着说：我们走吧。")["conv_forms"] == 0.0
    # one stray form in a long Taiwan text passes
    one = features(taiwan_text * 12 + "爲")
    assert 0 < one["conv_forms"] <= vcfg["policy"]["tw_max_conv_forms"]
    assert decide(one, vcfg["policy"])[:2] == ("tw", "tw")
    # documents scored before the feature existed decide as before
    old = {k: v for k, v in f.items() if k != "conv_forms"}
    assert decide(old, vcfg["policy"])[:2] == ("tw", "tw")


def test_mainland_quotation_marks(features, vcfg):
    rules = vcfg["policy"]
    # No Mainland word and no converter form: only the quotation marks tell (a converter changes
    # characters, not punctuation)
    mainland = "他說：“我們明天一起去公園散步吧。”大家都說：“好啊，就這麼辦。”"
    taiwan = "他說：「我們明天一起去公園散步吧。」大家都說：「好啊，就這麼辦。」"
    f, t = features(mainland), features(taiwan)
    assert f["mainland_terms"] == f["conv_forms"] == f["hk_markers"] == 0.0
    assert f["cn_quotes"] > rules["tw_max_cn_quotes"] and t["cn_quotes"] == 0.0
    assert decide(f, rules) == ("cn", "tw_converted", "guard_cn_quotes")
    assert decide(t, rules)[:2] == ("tw", "tw")
    # a Taiwan text that also quotes “...” somewhere writes 「」 elsewhere: no evidence
    assert features(taiwan + "書名叫“晨光”。")["cn_quotes"] == 0.0
    # only opening marks count: ”…” (a closing mark typed twice) is a slip, not Mainland's standard
    assert features("我們去看了”火焰山”的表演，小孩子都很有興趣。")["cn_quotes"] == 0.0
    # Simplified text is already `cn`; its quotes are not counted
    assert features("他说：“我们走吧。”")["cn_quotes"] == 0.0
    # documents scored before the feature existed decide as before
    old = {k: v for k, v in f.items() if k != "cn_quotes"}
    assert decide(old, rules)[:2] == ("tw", "tw")


def test_other_converters_forms_and_hk_written_usage(features, vcfg):
    rules = vcfg["policy"]
    # 産 (U+7523) is what some Simplified→Traditional converters write for 產 (U+7522)
    assert "産" in conversion_forms()
    mainland = features("今年全省工業生産總值增長較快，農業生産也保持穩定。")
    taiwan = features("今年全省工業生產總值增長較快，農業生產也保持穩定。")
    assert mainland["conv_forms"] > rules["tw_max_conv_forms"] and taiwan["conv_forms"] == 0.0
    assert decide(mainland, rules)[0] == "cn" and decide(taiwan, rules)[:2] == ("tw", "tw")
    # HK written usage with no Cantonese character: 本港 (Taiwan writes 香港), 私隱 (Taiwan: 隱私)
    hk = features("本港今日天氣晴朗，政府提醒市民保障個人私隱。")
    assert hk["hk_markers"] > rules["hk_min_markers"]
    assert decide(hk, rules)[0] == "hk"
    assert decide(features("香港今日天氣晴朗，政府提醒民眾保障個人隱私。"), rules)[:2] == ("tw", "tw")
    # 囉 is Taiwan Mandarin too (走囉), not a Cantonese marker
    assert features("時間到了，我們走囉！")["hk_markers"] == 0.0


def test_taiwan_word_containing_a_mainland_term_is_not_a_hit(features):
    # 算法 is Mainland for 演算法: inside Taiwan's own word it is no evidence, alone it is
    assert features.mainland_hits("這個演算法跑得很快。") == []
    assert features.mainland_hits("這個算法跑得很快。") == ["算法"]
    assert features("這個演算法跑得很快。")["mainland_terms"] == 0.0
    # the neutral words hide nothing else: a Mainland term next to one still counts, and OpenCC's
    # 網絡卡 (Taiwan writes 網路卡) is not a neutral word hiding 網絡
    assert features.mainland_hits("演算法的軟件") == ["軟件"]
    assert features.mainland_hits("家裡網絡卡頓怎麼辦") == ["網絡"]


def test_policy_tiers(features, vcfg):
    rules = vcfg["policy"]
    for s in TAIWAN:
        assert decide(features(s), rules)[:2] == ("tw", "tw")
    for s in MAINLAND_IN_TRADITIONAL:
        variant, tier, _ = decide(features(s), rules)
        assert (variant, tier) == ("cn", "tw_converted"), s
    for s in CANTONESE:
        assert decide(features(s), rules)[:2] == ("hk", "tw_converted")
    for s in SIMPLIFIED:
        assert decide(features(s), rules)[:2] == ("cn", "tw_converted")
    # a .cn domain tips text without other evidence
    neutral = "今天下午我在家裡整理舊照片，發現很多小時候的回憶。"
    assert decide(features(neutral), rules)[0] == "tw"
    assert decide(features(neutral, "http://a.example.cn"), rules)[0] == "cn"
    # without conversion non-Taiwan text is `other`; listed variants are dropped
    assert decide(features(SIMPLIFIED[0]), {**rules, "convert": []})[1] == "other"
    assert decide(features(CANTONESE[0]), {**rules, "drop": ["hk"]})[1:] == ("drop", "variant_hk")


def test_classifier_cannot_put_mainland_terms_into_tw(features, vcfg):
    """Even a classifier sure a text is Taiwan's cannot overrule the Mainland-term guard."""
    for s in MAINLAND_IN_TRADITIONAL:
        scores = {**features(s), "p_tw": 0.99, "p_cn": 0.005, "p_hk": 0.005}
        assert decide(scores, vcfg["policy"])[:2] == ("cn", "tw_converted")
    low = vcfg["policy"]["tw_min_p"]
    for s in TAIWAN:  # the model moves a rules-`tw` call out only below tw_min_p
        assert decide({**features(s), "p_tw": low / 2, "p_cn": 0.9, "p_hk": 0.1 - low / 2}, vcfg["policy"])[:2] == \
            ("cn", "tw_converted")
        assert decide({**features(s), "p_tw": low * 2, "p_cn": 0.9, "p_hk": 0.1 - low * 2}, vcfg["policy"])[:2] == ("tw", "tw")
        assert decide({**features(s), "p_tw": 0.8, "p_cn": 0.1, "p_hk": 0.1}, vcfg["policy"])[:2] == ("tw", "tw")


def test_conversion_to_taiwan_form():
    # The converter is the one `convert.setting` names (pipeline/convert.py), as for wiki text.
    assert to_taiwan(MAINLAND_IN_TRADITIONAL[0], "cn", "s2twp") == "這款手機的螢幕很清楚，下載影片也很快，網路訊號在地鐵上都不錯。"
    assert to_taiwan(SIMPLIFIED[0], "cn", "s2twp") == "這款手機的螢幕很清楚，下載影片也很快，網路訊號在地鐵上都不錯。"
    # MediaWiki's zh-tw table (the default) converts characters and only the words it is sure of.
    assert to_taiwan(SIMPLIFIED[1], "cn") == "我們公司的軟體團隊正在優化伺服器的內存占用，默認配置會在下個版本更新。"
    assert "說" in to_taiwan("他説得對", "hk")
    assert "户" not in to_taiwan("這個户口", "hk")


def test_policy_config_errors():
    with pytest.raises(UsageError, match="unknown keys"):
        VariantPolicy({"tw_max_mainland": 1})
    with pytest.raises(UsageError, match="not among"):
        VariantPolicy({"convert": ["jp"]})
    with pytest.raises(UsageError, match="target variant"):
        VariantPolicy({"drop": ["tw"]})
    with pytest.raises(UsageError, match="weights"):
        VariantPolicy({"weights": {"tw": 1.0, "drop": 0.0}})


def test_defaults_match_documented_config(vcfg):
    assert vcfg["policy"] == DEFAULTS
    assert vcfg["model"] is None


def test_missing_model_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        VariantScorer(model=tmp_path / "nope.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00not a fasttext model at all")
    from twbert.pipeline.variant_model import VariantModel
    with pytest.raises(UsageError, match="not a fastText model"):
        VariantModel(bad)


def _write_docs(path: Path, docs):
    with open(path, "w", encoding="utf-8") as fh:
        for i, (text, url) in enumerate(docs):
            meta = {"source": "web", "url": url} if url else {"source": "wiki", "title": f"t{i}"}
            fh.write(json.dumps({"text": text, "id": f"d{i}", "metadata": meta}, ensure_ascii=False) + "\n")


def test_steps_in_a_datatrove_pipeline(tmp_path):
    """Scorer then policy in a real LocalPipelineExecutor run: metadata, conversion and stats."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    src = tmp_path / "in"
    src.mkdir()
    docs = [(s, None) for s in TAIWAN] + [(s, "https://bbs.example.cn/t") for s in MAINLAND_IN_TRADITIONAL] \
        + [(s, "https://forum.example.hk/p") for s in CANTONESE] + [(s, None) for s in SIMPLIFIED] \
        + [("😀🎉 123", None), ("Only English words here.", "https://x.example.com.tw")]
    _write_docs(src / "docs.jsonl", docs)
    cfg = config.defaults("build")
    pipeline = [JsonlReader(str(src)), *steps(cfg), JsonlWriter(str(tmp_path / "out"), compression=None)]
    LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()

    out = [json.loads(line) for f in sorted((tmp_path / "out").glob("*.jsonl")) for line in open(f, encoding="utf-8")]
    assert len(out) == len(docs) - 2
    by_id = {d["id"]: d for d in out}
    for i in range(len(TAIWAN)):
        m = by_id[f"d{i}"]["metadata"]
        assert (m["variant"], m["tier"], m["weight"]) == ("tw", "tw", 1.0)
        assert "converted_from" not in m and m["domain_hint"] == "none"
        assert by_id[f"d{i}"]["text"] == TAIWAN[i]
    for d in out:
        m = d["metadata"]
        assert {"han_ratio", "trad_ratio", "mainland_terms", "hk_markers", "domain_hint", "variant", "tier", "weight"} <= set(m)
        assert "p_tw" not in m  # no model configured
        if m["tier"] == "tw_converted":
            assert m["converted_from"] == m["variant"] != "tw" and m["weight"] == 0.3
    mainland = [by_id[f"d{i}"] for i in range(len(TAIWAN), len(TAIWAN) + len(MAINLAND_IN_TRADITIONAL))]
    assert all(d["metadata"]["tier"] == "tw_converted" for d in mainland)
    # Converted with `convert.setting` (MediaWiki's zh-tw table by default): 軟件 → 軟體, 服務器 → 伺服器.
    assert "軟體" in mainland[1]["text"] and "軟件" not in mainland[1]["text"] and "伺服器" in mainland[1]["text"]

    stats = json.loads((tmp_path / "logs" / "stats.json").read_text())
    policy = next(s for s in stats if "policy" in s["name"].lower())["stats"]
    val = lambda k: policy.get(k, {}).get("total", 0) if isinstance(policy.get(k), dict) else policy.get(k, 0)  # noqa: E731
    assert val("total") == len(docs) == val("forwarded") + val("dropped")
    assert val("dropped_low_han_ratio") == 2
    # the two dropped docs have no script evidence at all: the rules' default variant, tier drop
    assert val("variant_tw") == len(TAIWAN) + 2
    assert val("variant_cn") == len(MAINLAND_IN_TRADITIONAL) + len(SIMPLIFIED)
    assert val("variant_hk") == len(CANTONESE)
    assert val("tier_tw") == len(TAIWAN) and val("tier_drop") == 2
    assert val("converted_cn") == len(MAINLAND_IN_TRADITIONAL) + len(SIMPLIFIED)
    assert val("converted_hk") == len(CANTONESE)
    assert sum(val(f"tier_{t}") for t in ("tw", "tw_converted", "other", "drop")) == len(docs)


def test_a_mapped_host_outweighs_a_stray_term(features, vcfg):
    """A site the map places in Hong Kong is `hk` even where one word reads as Mainland usage."""
    text = "立法會今日討論網絡安全條例，議員要求政府交代細節。"
    assert features(text)["mainland_terms"] > 0
    assert decide(features(text), vcfg["policy"])[0] == "cn"
    assert decide(features(text, "https://www.hkcnews.com/article/1"), vcfg["policy"])[:3] == ("hk", "tw_converted", "domain")
    # Simplified text is Simplified, whatever the site
    assert decide(features(SIMPLIFIED[0], "https://www.hkcnews.com/a"), vcfg["policy"])[0] == "cn"


def test_model_moves_the_tw_boundary_only_where_sure(features, vcfg):
    rules = vcfg["policy"]
    # one borrowed word in Taiwan news: the rules move it out; a sure model may bring it back
    one_term = "警方昨天持搜索票到嫌犯住處，查扣大批證物，並在網絡上追查其他共犯的下落，全案依法送辦。"
    meta = features(one_term)
    assert meta["mainland_terms"] > 0 and decide(meta, rules)[0] == "cn"
    sure = {**meta, "p_tw": 0.995, "p_cn": 0.004, "p_hk": 0.001}
    assert decide(sure, {**rules, "tw_rescue_p": None})[0] == "cn"
    # (a short test sentence: one term is a high rate, so the rate cap is raised here)
    rescue = {**rules, "tw_rescue_p": 0.99, "tw_rescue_max_terms": 1000.0}
    assert decide(sure, rescue)[:3] == ("tw", "tw", "classifier_rescue")
    assert decide({**sure, "p_tw": 0.9, "p_cn": 0.09}, rescue)[0] == "cn"  # not sure enough
    # dense Mainland wording, or other evidence (converter forms), is never rescued
    for s in MAINLAND_IN_TRADITIONAL:
        dense = {**features(s), "p_tw": 0.999, "p_cn": 0.0005, "p_hk": 0.0005}
        assert decide(dense, {**rules, "tw_rescue_p": 0.99})[0] == "cn"
    assert decide({**sure, "conv_forms": 10.0}, rescue)[0] == "cn"
    # veto: a rules-`tw` document leaves only when p_tw is under tw_min_p
    for s in TAIWAN:
        m = features(s)
        assert decide({**m, "p_tw": 0.08, "p_cn": 0.02, "p_hk": 0.9}, {**rules, "tw_min_p": 0.1})[:3] == \
            ("hk", "tw_converted", "guard_p_tw")
        assert decide({**m, "p_tw": 0.12, "p_cn": 0.8, "p_hk": 0.08}, {**rules, "tw_min_p": 0.1})[0] == "tw"


def test_script_counts_equal_a_per_character_classification(features):
    """The code-point lookup counts what a per-character reading of char_sets and the Han ranges counts."""
    from twbert.pipeline.variant import _HAN_RANGES

    trad, simp = char_sets()
    for text in TAIWAN + MAINLAND_IN_TRADITIONAL + CANTONESE + SIMPLIFIED + EDGE + ["HTS 𠀀𠀁 﨎 們们", "".join(SIMPLIFIED + TAIWAN)]:
        t = sum(c in trad for c in text)
        s = sum(c in simp for c in text)
        han = t + s + sum(c not in trad and c not in simp and any(lo <= ord(c) <= hi for lo, hi in _HAN_RANGES) for c in text)
        chars = sum(not c.isspace() for c in text)
        f = features(text)
        assert f["script_chars"] == t + s, text
        assert f["trad_ratio"] == (round(t / (t + s), 4) if t + s else 0.5), text
        assert f["han_ratio"] == (round(han / chars, 4) if chars else 0.0), text
