"""Which Chinese variant is this document written in: Taiwan, Mainland or Hong Kong?

`VariantFeatures` turns a text (and its URL) into the scores the policy decides on; `VariantScorer`
is the datatrove step that writes them into each document's metadata:

- `han_ratio`      Han characters / non-space characters.
- `trad_ratio`     Traditional-only / (Traditional-only + Simplified-only) characters. Both sets come
                   from OpenCC's own STCharacters/TSCharacters tables; 0.5 when the text has neither.
- `script_chars`   how many of those script-specific characters the text has (0: no script evidence).
- `mainland_terms` Mainland-usage hits per 1,000 Han characters. A term is Mainland usage when the
                   OpenCC round trip s2twp(tw2sp(x)) changes it: exactly the keys of OpenCC's
                   TWPhrases table (軟件→軟體, 信息→資訊, 視頻→影片 ...), matched in OpenCC-Traditional,
                   Taiwan-Traditional and Simplified spelling, plus the config's extra terms and
                   minus its ignore list (words Taiwan also uses: 支持, 項目, 程序 ...). Matching one
                   term table in OpenCC's own matcher (`TermCounter`) is far cheaper than running
                   the two conversions and diffing, and counts the same places (docs/variant.md).
- `hk_markers`     Cantonese and Hong Kong usage per 1,000 Han characters: Cantonese characters
                   (嘅 咗 喺 ...), HK terms from the config, and the characters OpenCC writes
                   differently for HK than for Taiwan (説/說, 衞/衛; 户/戶 in Traditional text only).
- `conv_forms`     OpenCC-standard character forms that Taiwan writes differently (爲 着 衆 羣 啓 峯 僞
                   ..., OpenCC's TWVariants keys) per 1,000 Han characters, in Traditional text:
                   what a Simplified→Traditional converter (OpenCC s2t and its kin) writes on a
                   Mainland page, and a Taiwan writer does not (為 著 眾 群 啟 峰 偽).
- `cn_quotes`      opening curly quotation marks (“) per 1,000 Han characters, in Traditional text that
                   has no corner quotes (「 」『 』) at all: Mainland's punctuation standard
                   (GB/T 15834) quotes with “ ”, Taiwan's and Hong Kong's with 「 」, and a
                   Simplified→Traditional converter changes characters, not punctuation.
- `domain_hint`    the URL's region from the host map (data/variant_hosts.tsv: the .tw/.hk/.mo/.cn suffixes and
                   major sites on generic TLDs, udn.com, hk01.com, people.com.cn ...; config
                   `variant.hosts` extends it): `tw`, `cn`, `hk` or `none`.
- `p_tw`, `p_cn`, `p_hk`  the fastText classifier's probabilities, when a model is configured.

Every score is defined for every input: an empty or non-Han document gets han_ratio 0, trad_ratio
0.5, zero rates and (with a model) uniform probabilities, never NaN.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from twbert.errors import UsageError

VARIANTS = ("tw", "cn", "hk")

# CJK Unified Ideographs, Extension A, Compatibility Ideographs, Extensions B-H.
_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
_HAN = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _HAN_RANGES) + "]")
_SPACE = re.compile(r"\s")
_OPENING_CURLY_QUOTE = re.compile("“")  # opening marks: ”…” (two closing marks) is a typing slip, not a standard
_CORNER_QUOTES = re.compile("[「」『』]")

# Cantonese written forms: common in HK speech-style text, essentially absent from Taiwan and
# Mainland Mandarin writing. (係, 咁 and 囉 are left out: Mandarin writes them too, 囉 as in 走囉.)
CANTONESE_CHARS = "嘅咗喺嗰冇啲佢哋睇唔嘢咩嚟噉啱嘞喎㗎嗮乜攞搵揾冚嬲瞓諗蕒餸嚿"


# --------------------------------------------------------------------------- OpenCC tables

def _opencc_root() -> Path:
    import opencc

    return Path(opencc.__file__).parent / "clib"


@cache
def converter(config: str):
    """A cached OpenCC converter (`s2twp`, `tw2sp`, `t2s`, ...). Not picklable: build it lazily."""
    import opencc

    return opencc.OpenCC(config)


@cache
def opencc_table(name: str) -> dict[str, list[str]]:
    """One of OpenCC's installed dictionaries (e.g. "TWPhrases") as {key: [values]}.

    The pip package ships them compiled (.ocd2, a marisa trie) with its own `opencc_dict` tool,
    which dumps them to text: that is the only reader of the format we can rely on.
    """
    root = _opencc_root()
    src = root / "share" / "opencc" / f"{name}.ocd2"
    tool = root / "bin" / "opencc_dict"
    if not src.is_file() or not os.access(tool, os.X_OK):
        raise UsageError(
            f"OpenCC dictionary {name} not found at {src} (or its dump tool at {tool}); "
            "reinstall the pinned opencc package: pip install 'opencc==1.4.2'"
        )
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / f"{name}.txt"
        res = subprocess.run([str(tool), "-i", str(src), "-o", str(dst), "-f", "ocd2", "-t", "text"],
                             capture_output=True, text=True)
        if res.returncode != 0 or not dst.is_file():
            raise UsageError(f"could not read OpenCC dictionary {src}: {res.stderr.strip()}")
        table = {}
        for line in dst.read_text(encoding="utf-8").splitlines():
            key, _, values = line.partition("\t")
            if key and values:
                table[key] = values.split(" ")
    return table


@cache
def char_sets() -> tuple[frozenset[str], frozenset[str]]:
    """(Traditional-only, Simplified-only) characters.

    Traditional-only: a key of TSCharacters that never maps to itself (們→们, 這→这).
    Simplified-only: a key of STCharacters that never maps to itself (们→們). Characters in both
    sets (a few that are one variant's simplification and another's traditional form) are neither,
    and neither are Taiwan's own standard forms (TWVariants' values): OpenCC's standard writes 羣 峯
    牀 祕 for 群 峰 床 秘, so STCharacters never maps those to themselves, yet Taiwan writes them.
    """
    trad = {k for k, vs in opencc_table("TSCharacters").items() if len(k) == 1 and k not in vs}
    simp = {k for k, vs in opencc_table("STCharacters").items() if len(k) == 1 and k not in vs}
    simp -= {v for vs in opencc_table("TWVariants").values() for v in vs}
    both = trad & simp
    return frozenset(trad - both), frozenset(simp - both)


@cache
def hk_forms() -> tuple[frozenset[str], frozenset[str]]:
    """HK character forms: (HK-only, also-Simplified).

    Every character where OpenCC's s2hk writes neither the Taiwan nor the OpenCC-standard form
    (説 for 說, 衞 for 衛, 户 for 戶, 温 for 溫). Those that are
    not Simplified characters (説 衞 啓) are HK evidence anywhere; those that are (户 温 脱) only in
    Traditional text. A few that Taiwan writes as often as its standard form (台, 裏, 濕, 鈎, 枴) are
    left out: they are no evidence.
    """
    s2hk, s2tw, s2t = converter("s2hk"), converter("s2tw"), converter("s2t")
    only, shared = set(), set()
    for key in opencc_table("STCharacters"):
        hk = s2hk.convert(key)
        # OpenCC's own standard forms (峯, 衆, 着) are what Simplified→Traditional converters write on
        # Mainland pages: evidence of conversion, not of Hong Kong.
        if len(key) == 1 and len(hk) == 1 and hk not in (s2tw.convert(key), s2t.convert(key)) \
                and hk not in "台裏濕鈎枴":
            (shared if s2t.convert(hk) != hk else only).add(hk)
    return frozenset(only), frozenset(shared)


# TWVariants keys that Taiwan writes about as often as its own form, or that are Taiwan's Ministry
# of Education standard forms themselves (祕 as in 祕書, 痹 as in 麻痹): no evidence of conversion.
TAIWAN_ALSO_WRITES = "裏污泄幺踊棱檐梁樑麼祕痹"

# Forms other Simplified→Traditional converters write (the big5 gateways of Mainland sites): 産 for
# 產 (the Japanese code point). 于 and 并, which such converters leave where Taiwan writes 於 and
# 並, are left out: Taiwan writes them in names (于 a surname, 并州).
OTHER_CONVERTER_FORMS = "産"


@cache
def conversion_forms() -> frozenset[str]:
    """OpenCC-standard characters whose Taiwan form differs (爲→為, 着→著, 衆→眾): TWVariants' keys.

    OpenCC's s2t, the converter most Mainland sites and crawls use to show Traditional text,
    writes these; Taiwan writers (and s2tw/s2twp) write the Taiwan forms. Other converters' forms
    (OTHER_CONVERTER_FORMS) are added.
    """
    return frozenset(k for k, vs in opencc_table("TWVariants").items()
                     if len(k) == 1 and k not in vs and k not in TAIWAN_ALSO_WRITES) | set(OTHER_CONVERTER_FORMS)


def spellings(term: str) -> set[str]:
    """A term as OpenCC-Traditional, Taiwan-Traditional and Simplified text would spell it."""
    simp = converter("t2s").convert(term)
    return {term, simp, converter("s2t").convert(simp), converter("s2tw").convert(simp)}


@cache
def _mainland_terms(extra: tuple[str, ...], ignore: tuple[str, ...]) -> frozenset[str]:
    s2twp, tw2sp = converter("s2twp"), converter("tw2sp")
    ignored = set().union(*(spellings(t) for t in ignore)) if ignore else set()
    terms: set[str] = set()
    for key, values in opencc_table("TWPhrases").items():
        # A key Taiwan also writes (數據→資料|數據, 菜單→選單|菜單) is no evidence; the round trip
        # keeps only keys that Taiwan text would not contain unchanged.
        if key in values or s2twp.convert(tw2sp.convert(key)) == key:
            continue
        terms |= spellings(key)
    for t in extra:
        terms |= spellings(t)
    return frozenset(t for t in terms - ignored if _HAN.search(t))


# TWPhrases values that are not Taiwan usage: OpenCC writes 網絡卡 for 网卡 (Taiwan: 網路卡); as a
# neutral word it would hide 網絡 in 網絡卡頓.
NOT_TAIWAN_FORMS = frozenset({"網絡卡"})


@cache
def taiwan_forms_with_terms(terms: frozenset[str]) -> frozenset[str]:
    """TWPhrases' Taiwan forms that contain a Mainland term (演算法 ⊃ 算法, 心房顫動 ⊃ 房顫): matched
    as neutral words, so Taiwan's own word does not count as the Mainland one inside it."""
    forms = {v for vs in opencc_table("TWPhrases").values() for v in vs} - NOT_TAIWAN_FORMS
    return frozenset(f for f in forms if f not in terms and any(t in f for t in terms if len(t) < len(f)))


@cache
def _hk_terms(extra: tuple[str, ...]) -> frozenset[str]:
    # OpenCC's HKPhrases is no help here: its HK forms are mostly ones Taiwan writes too (機率,
    # 伺服器, 伊利諾), so HK usage is the config's list in HK and Taiwan spelling.
    terms = set()
    for t in extra:
        simp = converter("t2s").convert(t)
        terms |= {t, converter("s2hk").convert(simp), converter("s2tw").convert(simp)}
    return frozenset(t for t in terms if _HAN.search(t))


class TermCounter:
    """Counts non-overlapping, leftmost-longest occurrences of a term list, in OpenCC's C++ engine.

    The terms become an OpenCC text dictionary that wraps each match in private-use marks; OpenCC's
    maximum-match segmentation then does the matching in one pass (~14 M chars/s; a trie-shaped
    Python regex of the same terms managed 2 M chars/s). Not picklable: build it inside a worker.
    """

    OPEN, CLOSE = "\ue000", "\ue001"

    def __init__(self, terms, neutral=()):
        import opencc

        self._dir = tempfile.TemporaryDirectory(prefix="twbert-terms-")
        table = Path(self._dir.name) / "terms.txt"
        # Neutral words map to themselves: the longest match consumes them, so a term inside one
        # (算法 in Taiwan's 演算法) is not counted.
        entries = {t: f"{t}\t{t}\n" for t in neutral}
        entries.update({t: f"{t}\t{self.OPEN}{t}{self.CLOSE}\n" for t in terms})
        table.write_text("".join(entries[t] for t in sorted(entries)
                                 if t and not any(c.isspace() for c in t)), encoding="utf-8")
        config = Path(self._dir.name) / "terms.json"
        dic = {"type": "text", "file": str(table)}
        config.write_text(json.dumps({"name": "twbert terms", "segmentation": {"type": "mmseg", "dict": dic},
                                      "conversion_chain": [{"dict": dic}]}), encoding="utf-8")
        self._cc = opencc.OpenCC(str(config))
        self._hits = re.compile(f"{self.OPEN}(.*?){self.CLOSE}", re.S)

    def count(self, text: str) -> int:
        return self._cc.convert(text).count(self.OPEN) - text.count(self.OPEN)

    def hits(self, text: str) -> list[str]:
        return self._hits.findall(self._cc.convert(text))


# --------------------------------------------------------------------------- features

HOSTS_FILE = Path(__file__).parent / "data" / "variant_hosts.tsv"
REGIONS = ("tw", "cn", "hk")


def _host(url: str | None) -> str:
    if not url:
        return ""
    try:
        host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


def load_host_map(path: str | os.PathLike = HOSTS_FILE) -> dict[str, str]:
    """{domain: region} from a host map file (`domain<TAB>region<TAB>kind` lines, `#` comments)."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        domain, _, rest = line.partition("\t")
        region = rest.split("\t", 1)[0].strip()
        if region not in REGIONS or not domain.strip():
            raise UsageError(f"{path}:{n}: expected `domain<TAB>region<TAB>kind` with region one of {list(REGIONS)}")
        out[domain.strip().lower().strip(".")] = region
    return out


class HostMap:
    """Host → region (`tw`, `cn`, `hk`) by the longest matching domain of the packaged map.

    `extra` ({domain: region}, config `variant.hosts`) adds or overrides entries; region `none`
    removes one (a parent's or a suffix's match then applies).
    """

    def __init__(self, extra: dict | None = None):
        self.map = dict(_packaged_hosts())
        for domain, region in (extra or {}).items():
            key = str(domain).strip().lower().strip(".")
            if region not in (*REGIONS, "none") or not key:
                raise UsageError(f"variant.hosts: {domain!r}: {region!r} is not one of {[*REGIONS, 'none']}")
            self.map[key] = region

    def region(self, url: str | None) -> str:
        """The region of a URL's host (or a bare host), or `none` when no entry matches."""
        labels = _host(url).split(".")
        for i in range(len(labels)):  # longest suffix first
            hit = self.map.get(".".join(labels[i:]))
            if hit and hit != "none":
                return hit
        return "none"

    def site(self, url: str | None) -> str:
        """The site a URL belongs to: its longest matching map entry below the top-level suffixes
        (money.udn.com → udn.com), else its last two labels (three under a two-letter ccTLD's
        com/org/gov/edu/net: news.ltn.com.tw → ltn.com.tw). Holding out whole sites uses it."""
        labels = [x for x in _host(url).split(".") if x]
        for i in range(len(labels) - 1):
            key = ".".join(labels[i:])
            if key in self.map and self.map[key] != "none":
                return key
        keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
        return ".".join(labels[-keep:])


_SECOND_LEVEL = {"com", "org", "gov", "edu", "net", "idv", "co", "ac", "gob"}


@cache
def _packaged_hosts() -> dict[str, str]:
    return load_host_map(HOSTS_FILE)


@cache
def _default_host_map() -> HostMap:
    return HostMap()


def domain_hint(url: str | None, hosts: HostMap | None = None) -> str:
    """The region of a URL's host from the host map (`tw`, `cn`, `hk`), or `none`.

    The packaged map has the .tw/.hk/.mo/.cn suffixes and the major news, portal and forum sites on
    generic TLDs (udn.com → tw, hkcnews.com → hk, people.com.cn → cn); `hosts` adds the config's.
    """
    return (hosts or _default_host_map()).region(url)


class VariantFeatures:
    """Scores one text; build one per worker (tables take ~0.5 s to load)."""

    def __init__(self, mainland_extra=(), mainland_ignore=(), hk_extra=(), hosts: dict | None = None):
        self.hosts = HostMap(hosts)
        trad, simp = char_sets()
        # A lookup by code point classifies every character: 1 = other Han, 2 = Traditional-only,
        # 3 = Simplified-only, 0 = not Han (numpy: ~20x the speed of a str.translate table).
        table = np.zeros(0x110000, dtype=np.uint8)
        for lo, hi in _HAN_RANGES:
            table[lo : hi + 1] = 1
        table[np.fromiter(map(ord, trad), dtype=np.int64, count=len(trad))] = 2
        table[np.fromiter(map(ord, simp), dtype=np.int64, count=len(simp))] = 3
        self._classes = table
        self.mainland_terms = _mainland_terms(tuple(mainland_extra), tuple(mainland_ignore))
        self._mainland = TermCounter(self.mainland_terms, taiwan_forms_with_terms(self.mainland_terms))
        only, shared = hk_forms()
        self._hk = TermCounter(set(_hk_terms(tuple(hk_extra))) | set(CANTONESE_CHARS) | only)
        self._hk_shared = re.compile("[" + "".join(sorted(shared)) + "]")
        self._conv = re.compile("[" + "".join(sorted(conversion_forms())) + "]")

    def __call__(self, text: str, url: str | None = None) -> dict:
        counts = np.bincount(self._classes[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)], minlength=4)
        h, t, s = (int(c) for c in counts[1:])
        han = t + s + h
        chars = len(text) - len(_SPACE.findall(text))
        per_k = 1000.0 / han if han else 0.0
        hk = self._hk.count(text)
        conv = quotes = 0
        if t > s:  # 户 温 脱 are HK forms in Traditional text, plain characters in Simplified
            hk += len(self._hk_shared.findall(text))
            conv = len(self._conv.findall(text))  # and 着 is plain Simplified too
            if not _CORNER_QUOTES.search(text):  # a Taiwan page quoting “...” keeps 「」 elsewhere
                quotes = len(_OPENING_CURLY_QUOTE.findall(text))
        return {
            "han_ratio": round(han / chars, 4) if chars else 0.0,
            "trad_ratio": round(t / (t + s), 4) if t + s else 0.5,
            "script_chars": t + s,
            "mainland_terms": round(self._mainland.count(text) * per_k, 3),
            "hk_markers": round(hk * per_k, 3),
            "conv_forms": round(conv * per_k, 3),
            "cn_quotes": round(quotes * per_k, 3),
            "domain_hint": domain_hint(url, self.hosts),
        }

    def mainland_hits(self, text: str) -> list[str]:
        """The Mainland terms found, for explaining a decision."""
        return self._mainland.hits(text)

    def hk_hits(self, text: str) -> list[str]:
        return self._hk.hits(text)


class VariantScorer(PipelineStep):
    """Writes the variant scores (and, with `model`, the classifier's probabilities) to metadata.

    Args:
        model: path to a fastText model from `twbert variant train`, or None for rules only.
        hosts: {domain: region} added to the packaged host map (config `variant.hosts`).
        mainland_extra / mainland_ignore / hk_extra: term lists (config `variant.terms`).
        max_chars: characters of each document the classifier reads.
    """

    name = "🀄 Variant scorer"
    type = "📊 - STATS"

    def __init__(self, model: str | None = None, mainland_extra=(), mainland_ignore=(), hk_extra=(),
                 max_chars: int = 2000, batch_size: int = 256, hosts: dict | None = None):
        super().__init__()
        self.model_path = str(model) if model else None
        if self.model_path:
            from twbert.pipeline.variant_model import check_model_file

            check_model_file(self.model_path)  # fail in the launcher, not in every worker
        self.term_args = (tuple(mainland_extra), tuple(mainland_ignore), tuple(hk_extra))
        self.hosts = dict(hosts or {})
        HostMap(self.hosts)  # a bad entry fails in the launcher
        self.max_chars = max_chars
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, vcfg: dict) -> VariantScorer:
        terms = vcfg.get("terms") or {}
        return cls(model=vcfg.get("model"), mainland_extra=terms.get("mainland_extra") or (),
                   mainland_ignore=terms.get("mainland_ignore") or (), hk_extra=terms.get("hk_extra") or (),
                   max_chars=vcfg.get("max_chars", 2000), hosts=vcfg.get("hosts") or {})

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        features = VariantFeatures(*self.term_args, hosts=self.hosts)
        model = None
        if self.model_path:
            from twbert.pipeline.variant_model import VariantModel

            model = VariantModel(self.model_path, max_chars=self.max_chars)
        batch = []
        for doc in data:
            batch.append(doc)
            if len(batch) >= self.batch_size:
                yield from self._score(batch, features, model)
                batch = []
        yield from self._score(batch, features, model)

    def _score(self, batch, features, model):
        if not batch:
            return
        start = time.perf_counter()
        # fastText predicts a batch in one call; its time is shared out evenly over the batch, so
        # the step's timing stays per document like every other step's.
        probs = model.predict([d.text for d in batch]) if model else [None] * len(batch)
        share = (time.perf_counter() - start) / len(batch)
        for doc, p in zip(batch, probs):
            start = time.perf_counter()
            doc.metadata.update(features(doc.text, doc.metadata.get("url")))
            if p is not None:
                doc.metadata.update(p)
            self.stats.time_stats.update(time.perf_counter() - start + share)
        for doc in batch:
            self.stat_update("total")
            self.stat_update("forwarded")
            yield doc


def steps(cfg: dict, exclusion_writer=None) -> list:
    """The scorer and the policy, in pipeline order, from a build config (`variant:` section).

    Empty when `variant.enabled` is false. `exclusion_writer` keeps what the policy drops.
    """
    vcfg = cfg.get("variant") or {}
    if not vcfg.get("enabled", True):
        return []
    from twbert.pipeline.policy import VariantPolicy

    return [VariantScorer.from_config(vcfg), VariantPolicy.from_config(vcfg, cfg.get("convert"), exclusion_writer)]
