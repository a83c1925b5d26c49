"""Variant policy: scores → `variant`, `tier`, sampling `weight`, and optional Taiwan-form conversion.

Tiers:
- `tw`            written in Taiwan usage: kept as is, highest weight;
- `tw_converted`  Mainland or HK text converted to Taiwan form (OpenCC hk2s/t2s, then the
                  `convert.setting` converter, MediaWiki's zh-tw tables by default),
                  `converted_from` records the original variant;
- `other`         non-Taiwan text kept unconverted (variants not listed in `convert`);
- `drop`          too little Han text, or a variant listed in `drop`: removed, counted by reason.

The variant comes from the rules; guards that look at the evidence directly move a `tw` call away
from `tw` when the text carries Mainland terms,
Cantonese/HK markers, too many Simplified characters, the character forms a Simplified→Traditional
converter writes (爲 着 衆, where Taiwan writes 為 著 眾), or Mainland quotation marks (“ ” where
Taiwan and Hong Kong write 「 」). That is what keeps Mainland text written in
Traditional characters (軟件, 信息, 視頻, 網絡) out of the `tw` tier whatever the classifier says.
A classifier, when configured, only moves the `tw` boundary where it is sure (`decide`), with
thresholds chosen by cross-validation on training sites (benchmarks/bench_variant.py --sites).
"""

from __future__ import annotations

from functools import cache

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from twbert.errors import UsageError
from twbert.pipeline.variant import VARIANTS, converter

TIERS = ("tw", "tw_converted", "other", "drop")

DEFAULTS = {
    "min_han_ratio": 0.3,
    "tw_min_trad_ratio": 0.9,
    "tw_max_mainland_terms": 1.0,
    "tw_max_hk_markers": 3.0,
    "tw_max_conv_forms": 3.0,
    "tw_max_cn_quotes": 1.0,
    "tw_min_p": 0.01,
    "tw_rescue_p": 0.95,
    "tw_rescue_max_terms": 3.0,
    "cn_min_mainland_terms": 1.0,
    "hk_min_markers": 3.0,
    "convert": ["cn", "hk"],
    "drop": [],
    "weights": {"tw": 1.0, "tw_converted": 0.3, "other": 0.1},
}


def _guard(meta: dict, r: dict) -> tuple[str, str] | None:
    """The evidence that moves a `tw` call away from `tw`, whoever made the call; None if there is none."""
    # Text with no script-specific character at all reads the same in either script: its 0.5 is
    # no evidence of Simplified (documents scored before script_chars existed: as before).
    if meta["trad_ratio"] < r["tw_min_trad_ratio"] and meta.get("script_chars", 1) > 0:
        return "cn", "guard_trad_ratio"
    if meta["mainland_terms"] > r["tw_max_mainland_terms"]:
        return "cn", "guard_mainland_terms"
    if meta["hk_markers"] > r["tw_max_hk_markers"]:
        return "hk", "guard_hk_markers"
    # Older documents (scored before these features) have no conv_forms / cn_quotes: no evidence.
    if meta.get("conv_forms", 0.0) > r["tw_max_conv_forms"]:
        return "cn", "guard_conv_forms"
    if meta.get("cn_quotes", 0.0) > r["tw_max_cn_quotes"]:
        return "cn", "guard_cn_quotes"
    return None


def decide(meta: dict, rules: dict) -> tuple[str, str, str | None]:
    """(variant, tier, why) for one document's scores. `why` names the rule that decided.

    The rules decide; a classifier (p_tw/p_cn/p_hk in `meta`) only adjusts their `tw` boundary:
    it moves a rules-`tw` document out when `p_tw` < `tw_min_p` (strong evidence against Taiwan),
    and, with `tw_rescue_p` set, brings back a document the rules moved out on a few Mainland terms
    alone (at most `tw_rescue_max_terms` per 1k, no other evidence) when `p_tw` >= `tw_rescue_p`.
    """
    r = {**DEFAULTS, **rules}
    has_p = all(k in meta for k in ("p_tw", "p_cn", "p_hk"))
    if meta["trad_ratio"] < 0.5:
        variant, why = "cn", "simplified"
    elif meta.get("domain_hint") in ("cn", "hk"):
        # A host in the map is the site's own region: stronger than one word on the page.
        variant, why = meta["domain_hint"], "domain"
    elif meta["hk_markers"] >= r["hk_min_markers"]:
        variant, why = "hk", "hk_markers"
    elif meta["mainland_terms"] >= r["cn_min_mainland_terms"]:
        variant, why = "cn", "mainland_terms"
    else:
        variant, why = "tw", "rules"
    if variant == "tw":
        variant, why = _guard(meta, r) or (variant, why)
    if has_p:
        if variant == "tw" and meta["p_tw"] < r["tw_min_p"]:
            variant = "cn" if meta["p_cn"] >= meta["p_hk"] else "hk"
            why = "guard_p_tw"
        elif (r["tw_rescue_p"] is not None and why in ("mainland_terms", "guard_mainland_terms")
              and meta["mainland_terms"] <= r["tw_rescue_max_terms"] and meta["p_tw"] >= r["tw_rescue_p"]
              and _guard({**meta, "mainland_terms": 0.0}, r) is None):
            variant, why = "tw", "classifier_rescue"
    if meta["han_ratio"] < r["min_han_ratio"]:
        return variant, "drop", "low_han_ratio"
    if variant == "tw":
        return variant, "tw", why
    if variant in r["drop"]:
        return variant, "drop", f"variant_{variant}"
    if variant in r["convert"]:
        return variant, "tw_converted", why
    return variant, "other", why


def to_taiwan(text: str, variant: str, setting: str = "mediawiki", phrases=()) -> str:
    """Taiwan-form text: through Simplified (hk2s for HK forms, t2s otherwise), then the converter
    setting (`convert.setting`, pipeline/convert.py: the one used for wiki text too).

    Going through Simplified first lets the converter's phrase tables apply to Traditional input
    too (軟件 → 软件 → 軟體), which a Simplified→Taiwan table alone would leave as 軟件.
    """
    simp = converter("hk2s" if variant == "hk" else "t2s").convert(text)
    return _taiwan_converter(setting, tuple(map(_hashable, phrases or ()))).convert(simp)


def _hashable(item):
    return tuple(item) if isinstance(item, list) else item


@cache
def _taiwan_converter(setting: str, phrases: tuple):
    from twbert.pipeline.convert import Converter

    return Converter(setting, list(phrases))


class VariantPolicy(BaseFilter):
    """Sets `variant`, `tier`, `weight` (and `converted_from`) from the scorer's metadata.

    Args:
        rules: tier thresholds, `convert` and `drop` variant lists and per-tier `weights`
            (config `variant.policy`; see DEFAULTS and twbert/defaults/build.yaml).
        exclusion_writer: keeps the documents of tier `drop` (pipeline/removed.py).

    Stats: `variant_<v>` for every document read (the detected mix before the policy),
    `tier_<t>` for every document (after), `converted_<v>` per conversion, `dropped_<reason>`.
    """

    name = "🀄 Variant policy"

    def __init__(self, rules: dict | None = None, convert: str = "mediawiki", phrases=(), exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.convert, self.phrases = convert, list(phrases or ())
        rules = dict(rules or {})
        unknown = set(rules) - set(DEFAULTS)
        if unknown:
            raise UsageError(f"variant.policy: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.rules = {**DEFAULTS, **rules}
        for key in ("convert", "drop"):
            bad = set(self.rules[key]) - set(VARIANTS)
            if bad:
                raise UsageError(f"variant.policy.{key}: {sorted(bad)} not among {list(VARIANTS)}")
        if "tw" in self.rules["drop"] or "tw" in self.rules["convert"]:
            raise UsageError("variant.policy: `tw` cannot be converted or dropped: it is the target variant")
        self.weights = {**DEFAULTS["weights"], **(self.rules["weights"] or {})}
        if set(self.weights) != {"tw", "tw_converted", "other"}:
            raise UsageError("variant.policy.weights: give exactly tw, tw_converted and other")

    @classmethod
    def from_config(cls, vcfg: dict, ccfg: dict | None = None, exclusion_writer=None) -> VariantPolicy:
        ccfg = ccfg or {}
        return cls(vcfg.get("policy") or {}, convert=ccfg.get("setting", "mediawiki"), phrases=ccfg.get("phrases"),
                   exclusion_writer=exclusion_writer)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        meta = doc.metadata
        if "han_ratio" not in meta:
            raise UsageError(f"document {doc.id}: no variant scores: VariantPolicy must follow VariantScorer")
        variant, tier, why = decide(meta, self.rules)
        self.stat_update(f"variant_{variant}")
        self.stat_update(f"tier_{tier}")
        meta["variant"] = variant
        meta["tier"] = tier
        if tier == "drop":
            return False, why
        if tier == "tw_converted":
            # The wikitext cleaner already rendered wiki pages as a zh-tw reader sees them, keeping
            # the forms conversion markup pins (-{于}-爾班, -{R|软件}-). Converting again would undo
            # exactly those, so wiki pages are tiered but their text is left alone.
            if meta.get("source") != "wiki":
                doc.text = to_taiwan(doc.text, variant, self.convert, self.phrases)
            meta["converted_from"] = variant
            self.stat_update(f"converted_{variant}")
        meta["weight"] = float(self.weights[tier])
        return True
