"""Wikitext → the plain text a zh-tw reader of zhwiki sees.

`WikitextCleaner` rewrites wiki documents (`metadata.source == "wiki"`); web documents pass through.

1. **Conversion markup** (`-{…}-`, innermost first) is resolved before parsing and each result is
   *protected*: replaced by one private-use character that nothing later (markup stripping, page
   rules, the converter) can touch, and put back at the very end. So the variant the page author chose
   is inserted verbatim (`-{于}-爾班` stays 于爾班; a converter alone would give 於爾班).
   - `-{zh-hans:…;zh-hant:…;zh-tw:…}-`: zh-tw, else zh-hant, else zh-hk, else zh-mo, else the first of
     zh-hans / zh-cn / zh-sg / zh-my / zh converted with the converter setting (convert.py).
   - `-{text}-`, `-{R|text}-`: the text, verbatim.
   - `-{H|rules}-`: a page-wide rule, displays nothing. `-{A|rules}-`: a page-wide rule that also
     displays its zh-tw form. `-{T|…}-`, `-{D|…}-`, `-{-|…}-`: display nothing.
   - `-{zh-hans;zh-hant|text}-` (variant flags): the text if zh-tw or zh-hant is listed, else nothing.
   - Variant codes are case-insensitive (`zh-TW:`), and `-{{`/`}}-` belong to templates, as in MediaWiki.
2. **Page rules** (`-{H|…}-`, `-{A|…}-`, and the numbered parameters of `{{NoteTA}}`), then the
   **conversion groups** NoteTA names (`G1=IT`: the `Module:CGroup/IT` rules, cgroups.py): every form
   a rule lists is replaced, in the text outside conversion markup, by the rule's zh-tw form
   (protected), leftmost-longest, *before* the converter (convert.py, MediaWiki's zh-tw tables by
   default) converts the rest. A page's own rules win over its groups' rules for the same string.
   A bidirectional rule also maps its forms' converted spellings (`zh-cn:能级;zh-tw:能階` catches
   能級 too: editors write in either script), which MediaWiki does not. A unidirectional
   `X=>zh-tw:Y` rule maps only X.
3. **Markup** (mwparserfromhell): links keep their text; files/images, categories and interlanguage
   links go; `<ref>`, `<references>`, tables, galleries, math and code go; every template goes
   (infoboxes, navboxes, citations, …) except the inline ones that carry running text
   (`INLINE_TEMPLATES`: `{{lang|en|…}}`, `{{le|…}}`, `{{link-en|…}}`, `{{tsl|…}}`, `{{nowrap|…}}` …,
   and the dates of `{{bd}}`, `{{birth date}}` … in `DATE_TEMPLATES`), whose visible text is kept.
   Interlanguage links are those whose prefix is a Wikipedia edition's code. Reference-like sections
   (references.py) are dropped with their subsections. Headings become paragraph breaks.
4. **Whitespace**: Unicode spaces become one ASCII space, lines are stripped, empty brackets left by
   removed citations (`（）`, `（，）`) go, paragraphs are separated by one blank line.
"""

from __future__ import annotations

import re

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from mwparserfromhell.nodes import ExternalLink, Heading, HTMLEntity, Tag, Template, Text, Wikilink

from twbert.pipeline.convert import MEDIAWIKI, Converter, RuleTable
from twbert.pipeline.references import ReferenceHeadings
from twbert.pipeline.wikiparse import DROP, FLAT, LINK, TEMPLATE, FlatHeading, FlatLink, FlatTag, FlatTemplate, PruningParser

# Variants a zh-tw reader falls back to, in order; the simplified ones go through the converter.
VARIANT_PRIORITY = ("zh-tw", "zh-hant", "zh-hk", "zh-mo", "zh-hans", "zh-cn", "zh-sg", "zh-my", "zh")
SIMPLIFIED = frozenset({"zh-hans", "zh-cn", "zh-sg", "zh-my", "zh"})
TW_FLAGS = frozenset({"zh-tw", "zh-hant"})

# Inline templates whose visible text is running text: name → parameters to try, first non-empty wins.
# A trailing `*` matches any suffix (`lang-*` covers {{lang-en|…}}, {{lang-ja|…}}). Names are compared
# lower-cased with `_` as space. Anything not listed here renders as nothing.
INLINE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "lang": ("2",), "lang-*": ("1",), "langwithname": ("3",), "llang": ("2",),
    "le": ("3", "1"), "link-*": ("3", "1"), "tsl": ("4", "3"), "ill": ("1",), "illm": ("1",), "interlanguage link": ("1",),
    "nowrap": ("1",), "nobr": ("1",), "small": ("1",), "big": ("1",), "larger": ("1",), "smaller": ("1",),
    "bold": ("1",), "b": ("1",), "italic": ("1",), "i": ("1",), "em": ("1",), "strong": ("1",), "u": ("1",),
    "underline": ("1",), "s": ("1",), "del": ("1",), "ins": ("1",), "sup": ("1",), "sub": ("1",), "center": ("1",),
    "font": ("1", "text"), "color": ("2",), "colour": ("2",), "abbr": ("1",), "unicode": ("1",), "script/*": ("1",),
    "ruby": ("1",), "ruby-*": ("1",), "transl": ("3", "2"), "transliteration": ("3", "2"), "ipa": ("1",),
    "ipa-*": ("1",), "audio": ("2",), "nihongo": ("1",), "zh": ("t", "c", "s"), "quote": ("1", "text", "quote"),
    "cquote": ("1", "quote"), "quotation": ("1",), "blockquote": ("1", "text"), "flag": ("1",), "flagcountry": ("1",),
    "國旗": ("1",), "国旗": ("1",), "en": ("1",), "linktext": ("1",), "keypress": ("1",), "notetag": (), "lj": ("1",),
}
# Date templates, rendered as zhwiki shows them (`{{birth date|1950|01|1}}` → 1950年1月1日): name → does
# it show an age. An age counted to today (`birth date and age`) is left out, as it goes stale in a
# corpus; `death date and age` counts from the birth date in parameters 4-6. `{{bd|1900年|1月1日|2000年|1月1日}}`
# (birth year, day, death year, day) shows 1900年1月1日—2000年1月1日, and 1950年7月13日— for the living.
DATE_TEMPLATES = {"birth date": False, "birth date and age": False, "death date": False, "death date and age": True}

FILE_NS = frozenset({"file", "image", "media", "文件", "檔案", "档案", "图像", "圖像", "媒體", "媒体", "媒體文件", "媒体文件"})
CATEGORY_NS = frozenset({"category", "分类", "分類"})
# Interlanguage prefixes are exactly the codes of Wikipedia editions (meta:List of Wikipedias, with the
# closed editions and the aliases MediaWiki also accepts), compared lower-cased. Any other `X:` is part
# of the title (`[[Re:從零開始的異世界生活]]`, `[[CSI:犯罪現場]]`) or an interwiki link with text (`wikt:`).
WIKIPEDIA_LANGUAGES = frozenset("""
aa ab ace ady af ak als alt am ami an ang ann anp ar arc ary arz as ast atj av avk awa ay az azb
ba ban bar bat-smg bbc bcl bdr be be-tarask be-x-old bew bg bh bi bjn blk bm bn bo bpy br bs btm bug bxr
ca cbk-zam cdo ce ceb ch cho chr chy ckb co cr crh cs csb cu cv cy
da dag de dga din diq dsb dtp dty dv dz ee egl el eml en eo es et eu ext
fa fat ff fi fiu-vro fj fo fon fr frp frr fur fy ga gag gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv
ha hak haw he hi hif ho hr hsb ht hu hy hyw hz ia iba id ie ig igl ii ik ilo inh io is it iu
ja jam jbo jv ka kaa kab kbd kbp kcg kg kge ki kj kk kl km kn knc ko koi kr krc ks ksh ku kus kv kw ky
la lad lb lbe lez lfn lg li lij lld lmo ln lo lrc lt ltg lv lzh
mad mai map-bms mdf mg mh mhr mi min mk ml mn mni mnw mo mos mr mrj ms mt mus mwl my myv mzn
na nah nan nap nb nds nds-nl ne new ng nia nl nn no nov nqo nr nrm nso nup nv ny oc olo om or os
pa pag pam pap pcd pcm pdc pfl pi pih pl pms pnb pnt ps pt pwn qu
rm rmy rn ro roa-rup roa-tara rsk ru rue rup rw
sa sah sat sc scn sco sd se sg sgs sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq su sv sw
syl szl szy ta tay tcy tdd te tet tg th ti tig tk tl tly tn to tok tpi tr trv ts tt tum tw ty tyv
udm ug uk ur uz ve vec vep vi vls vo vro wa war wo wuu xal xh xmf yi yo yue
za zea zgh zh zh-classical zh-min-nan zh-yue zu
""".split())

DROP_TAGS = frozenset({
    "ref", "references", "gallery", "math", "chem", "ce", "syntaxhighlight", "source", "pre", "score", "timeline",
    "graph", "mapframe", "maplink", "templatedata", "imagemap", "table", "inputbox", "categorytree", "includeonly",
    "hiero", "indicator", "section", "templatestyles", "charinsert", "poem-ignore",
})

# MediaWiki expands templates before it reads conversion markup, so `-{{` opens a template and in a run
# of `}` the last one closes `-{` only after the template pairs (`}}-` closes a template, `}}}-` both).
_OPEN = r"-\{(?!\{)"
_CLOSE = r"(?<!\})(?:\}\})*\}-"
_CONVERSION = re.compile(rf"{_OPEN}((?:(?!{_OPEN}|{_CLOSE}).)*?(?<!\}})(?:\}}\}})*)\}}-", re.S)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
# <ref> bodies are mostly citation templates: cut them before parsing, the costliest part otherwise.
_REF = re.compile(r"<ref\b[^>]*?/>|<ref\b[^>]*>.*?</ref\s*>", re.S | re.I)
_NOTETA = re.compile(r"\{\{\s*(?:template:|模板:)?noteta\s*[|}]", re.I)
_GROUP_PARAM = re.compile(r"^G\d+$", re.I)
_MAGIC = re.compile(r"__[A-Z]+__")
_FLAGS = re.compile(r"^\s*([A-Za-z\-;\s]*?)\s*\|(.*)$", re.S)
# MediaWiki lower-cases variant codes: `zh-TW:` is `zh-tw:`.
_RULE_SPLIT = re.compile(r";(?=\s*(?:[^;=]*=>\s*)?zh(?:-[a-z]{2,4})?\s*:)", re.I)
_RULE_PIECE = re.compile(r"^\s*(?:(?P<src>[^;]*?)\s*=>\s*)?(?P<var>zh(?:-[a-z]{2,4})?)\s*:(?P<val>.*?)\s*;?\s*$", re.S | re.I)
_PUA_FIRST = 0xF0000  # planes 15 and 16: private use, never in real text worth keeping
_PUA = re.compile("[\U000F0000-\U0010FFFD]")
_SPACES = re.compile(r"[^\S\n]+")
_EMPTY_BRACKETS = re.compile(r"[（(]\s*[，,、；;：:\s]*\s*[）)]")
_BLANKS = re.compile(r"\n{3,}")
# Unbalanced markup (a template never closed, a stray `]]`) survives parsing as literal text; MediaWiki
# would show it too, but it is noise to a model: cut the brackets, keep the words.
_LEFTOVER = re.compile(r"-\{|\}-|\{\{|\}\}|\[\[|\]\]|\{\||\|\}|</?ref\b[^>]*>|<references\s*/?>", re.I)
# Conversion bodies repeat within a page and across pages (one -{zh-hans:…;zh-tw:…}- in every section):
# their readings are kept, up to _CACHE_ENTRIES, unless they hold markup (rendering it counts templates)
# or a placeholder (it stands for one page's protected text).
_UNCACHEABLE = re.compile("[\\[{<'&\U000F0000-\U0010FFFD]")
_CACHE_ENTRIES = 100_000
_MISSING, _NOT_RULES = object(), object()
_BARE_URL = re.compile(r"(?:https?|ftp)://[^\s<>\[\]{}|\"，。、）]+")  # free links: a URL is not prose


def parse_rules(body: str) -> list[tuple[str | None, str, str]]:
    """`zh-hans:A;zh-tw:B;` → [(None, 'zh-hans', 'A'), (None, 'zh-tw', 'B')]; unidirectional pieces carry their source."""
    out = []
    for piece in _RULE_SPLIT.split(body):
        if not piece.strip():
            continue
        m = _RULE_PIECE.match(piece)
        if not m:
            return []  # not a rule list: the caller treats the body as text
        out.append((m["src"], m["var"].lower(), m["val"]))
    return out


def _template_name(t) -> str:
    return _normal_name(str(t.name))


def _normal_name(written: str) -> str:
    name = written.strip().replace("_", " ")
    for prefix in ("template:", "模板:", "样板:", "樣板:", "t:"):
        if name.lower().startswith(prefix):
            name = name[len(prefix):]
    return " ".join(name.split()).lower()


def _cacheable(body: str) -> bool:
    return _UNCACHEABLE.search(body) is None


def _text(value: str) -> str:
    return _BARE_URL.sub("", value) if "//" in value else value


def _source(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _get(params, key: str):
    """The value of the last parameter named `key` (MediaWiki reads the last), or None."""
    key = key.strip()
    for p in reversed(params):
        if str(p.name).strip() == key:
            return p.value
    return None


def _link_hidden(title: str) -> bool:
    """Whether a wikilink with this title shows nothing: files, categories, interlanguage links."""
    if ":" not in title:
        return False
    title = title.strip()
    visible = title.startswith(":")
    title = title.lstrip(":").strip()
    if ":" not in title:
        return False
    prefix = title.split(":", 1)[0].strip().lower()
    if visible:
        return prefix in FILE_NS
    return prefix in FILE_NS or prefix in CATEGORY_NS or prefix in WIKIPEDIA_LANGUAGES


class Wikitext:
    """One configured wikitext renderer; `render(wikitext) -> text`. Holds a converter (not picklable).

    `groups` maps a conversion group's name (`IT`, as NoteTA's `G1=IT` names it) to its rule bodies
    (`zh-cn:对象;zh-tw:物件;`), as cgroups.py reads them from the dump or a pinned extract.
    """

    def __init__(self, reference_headings: list[str] | None = None, extra_inline_templates: dict | None = None,
                 keep_headings: bool = False, convert: str = MEDIAWIKI, phrases=None, groups: dict | None = None):
        self.converter = Converter(convert, phrases)
        self.groups = dict(groups or {})
        self._group_tables: dict[tuple[str, ...], RuleTable] = {}
        self.refs = ReferenceHeadings(reference_headings)
        self.keep_headings = keep_headings
        table = dict(INLINE_TEMPLATES)
        for k, v in (extra_inline_templates or {}).items():
            table[str(k).lower().replace("_", " ")] = tuple(str(p) for p in ([v] if isinstance(v, (str, int)) else v))
        self.exact = {k: v for k, v in table.items() if not k.endswith("*")}
        self.prefixes = sorted(((k[:-1], v) for k, v in table.items() if k.endswith("*")), key=lambda kv: -len(kv[0]))
        self.counts: dict[str, int] = {}
        self._parser = PruningParser(self._decide)
        self._template_decisions: dict[str, str] = {}
        self._targets_cache: dict[str, tuple[dict[str, str], str | None]] = {}
        self._choice_cache: dict[str, object] = {}

    def parse(self, wikitext: str):
        """The page's tree, built only as far as the renderer reads it (wikiparse.py): most of the cost otherwise."""
        return self._parser.parse(wikitext)

    def _decide(self, kind: str, name: str, wiki_markup: str | None) -> str:
        """DROP what renders as nothing whatever it holds, else FLAT (wikiparse.py asks, for each template, link and tag)."""
        if kind == TEMPLATE:
            # Template names repeat across pages (cite web, Infobox …): remember the answer, within reason.
            how = self._template_decisions.get(name)
            if how is None:
                normal = _normal_name(name)
                # NoteTA renders nothing, but render() reads its rules from the top-level node.
                how = FLAT if normal == "noteta" or self._template_kind(normal) else DROP
                if len(self._template_decisions) < _CACHE_ENTRIES:
                    self._template_decisions[name] = how
            return how
        if kind == LINK:
            return DROP if _link_hidden(name) else FLAT
        tag = name.strip().lower()
        hidden = tag in ("table", "li", "dt", "dd") if wiki_markup else tag in DROP_TAGS
        return DROP if hidden else FLAT

    def _template_kind(self, name: str):
        """What shows a template's text: "convert", "date", its inline spec, or None (it shows nothing)."""
        if name.startswith("#") or name.startswith("subst:"):
            return None
        if name == "convert":
            return "convert"
        if name == "bd" or name in DATE_TEMPLATES:
            return "date"
        spec = self.exact.get(name)
        if spec is None:
            for prefix, s in self.prefixes:
                if name.startswith(prefix):
                    return s
        return spec

    # ---- conversion markup -------------------------------------------------------------------------
    def _choose(self, pieces, unidirectional: bool = False) -> str | None:
        by_var = {}
        for _, var, val in pieces:
            by_var.setdefault(var, val)
        order = ("zh-tw", "zh-hant") if unidirectional else VARIANT_PRIORITY
        for var in order:
            if var in by_var:
                text = self._plain(by_var[var])
                return self.converter.convert(text) if var in SIMPLIFIED else text
        return None

    def _plain(self, wikitext: str) -> str:
        """Markup inside a conversion value (a link, say) rendered without further conversion."""
        if not any(c in wikitext for c in "[{<'&"):
            return wikitext
        return self._render(self.parse(wikitext))

    def _protect(self, text: str) -> str:
        self._protected.append(text)
        return chr(_PUA_FIRST + len(self._protected) - 1)

    def _rule_targets(self, body: str) -> tuple[dict[str, str], str | None]:
        """The rules in `body` as {form: zh-tw form}, and the zh-tw form an A| rule displays (not to be changed)."""
        found = self._targets_cache.get(body)
        if found is None:
            found = self._read_rules(body)
            if _cacheable(body) and len(self._targets_cache) < _CACHE_ENTRIES:
                self._targets_cache[body] = found
        return found

    def _read_rules(self, body: str) -> tuple[dict[str, str], str | None]:
        pieces = parse_rules(body)
        bidi = [p for p in pieces if p[0] is None]
        pairs: dict[str, str] = {}
        shown = None
        if bidi:
            shown = self._choose(bidi)
            if shown is not None:
                for _, _, val in bidi:
                    if val.strip():
                        pairs[val.strip()] = shown
                # Editors write in either script: a rule listing 能级 also catches 能級, the spelling
                # the converter would give it, which MediaWiki's exact-match table would leave alone.
                for _, _, val in bidi:
                    pairs.setdefault(self.converter.convert(val.strip()), shown)
        for src in dict.fromkeys(p[0].strip() for p in pieces if p[0] is not None):
            target = self._choose([p for p in pieces if p[0] is not None and p[0].strip() == src], unidirectional=True)
            if target is not None and src:
                pairs[src] = target
        return pairs, shown

    def _add_rules(self, body: str) -> str | None:
        """Register the page-wide rules in `body`; returns the zh-tw form for display (for A|)."""
        pairs, shown = self._rule_targets(body)
        marks: dict[str, str] = {}
        for src, target in pairs.items():
            if target not in marks:
                marks[target] = self._protect(target)
            self._rules[src] = marks[target]
        self.counts["page_rules"] = self.counts.get("page_rules", 0) + 1
        if shown is None:
            return None
        return marks.get(shown) or self._protect(shown)

    def _group_table(self, names: tuple[str, ...]) -> RuleTable:
        """The merged rules of the named groups (later groups win), built once per combination."""
        if names not in self._group_tables:
            pairs: dict[str, str] = {}
            for name in names:
                for body in self.groups[name]:
                    pairs.update(self._rule_targets(body)[0])
            self._group_tables[names] = RuleTable(pairs)
        return self._group_tables[names]

    def _conversion(self, m: re.Match) -> str:
        body = m.group(1)
        self.counts["conversion_markup"] = self.counts.get("conversion_markup", 0) + 1
        fm = _FLAGS.match(body)
        if fm and "[" not in fm.group(1):
            flags = {f.strip() for f in fm.group(1).split(";") if f.strip()}
            rest = fm.group(2)
            if "H" in flags:
                self._add_rules(rest)
                return ""
            if "A" in flags:
                return self._add_rules(rest) or ""
            if flags & {"T", "D", "-"}:
                return ""
            if "R" in flags:
                return self._protect(self._plain(rest))
            variants = {f.lower() for f in flags}
            if variants and all(v.startswith("zh") for v in variants):
                return self._protect(self._plain(rest)) if variants & TW_FLAGS else ""
        chosen = self._choice_cache.get(body, _MISSING)
        if chosen is _MISSING:
            pieces = parse_rules(body)
            if pieces and any(src is None for src, _, _ in pieces):
                chosen = self._choose([p for p in pieces if p[0] is None])
            else:
                chosen = _NOT_RULES
            if _cacheable(body) and len(self._choice_cache) < _CACHE_ENTRIES:
                self._choice_cache[body] = chosen
        if chosen is _NOT_RULES:
            return self._protect(self._plain(body))
        return self._protect(chosen) if chosen is not None else ""

    # ---- markup ---------------------------------------------------------------------------------------
    def _render(self, code, top: bool = False) -> str:
        parts = []
        skip_below = None  # level of the reference heading whose section is being skipped
        for node in code.nodes:
            if type(node) is Text:  # most nodes
                if skip_below is None:
                    parts.append(_text(node.value))
                continue
            if isinstance(node, (FlatHeading, Heading)):
                if skip_below is not None and node.level > skip_below:
                    continue
                skip_below = None
                title = self._value(node.title).strip()
                if top and self._expand(title) in self.refs:
                    skip_below = node.level
                    self.counts["ref_sections_stripped"] = self.counts.get("ref_sections_stripped", 0) + 1
                    continue
                parts.append("\n\n" + (title + "\n\n" if self.keep_headings and title else ""))
                continue
            if skip_below is not None:
                continue
            parts.append(self._node(node))
        return "".join(parts)

    def _node(self, node) -> str:
        if isinstance(node, Text):
            return _text(node.value)
        if isinstance(node, FlatLink):
            return self._link(node.title, node.text)
        if isinstance(node, FlatTemplate):
            return self._template(_normal_name(node.name), node.params)
        if isinstance(node, FlatTag):
            return self._tag(node.tag, node.wiki_markup, node.contents)
        if isinstance(node, Wikilink):
            return self._link(str(node.title), node.text)
        if isinstance(node, Template):
            return self._template(_template_name(node), node.params)
        if isinstance(node, Tag):
            return self._tag(str(node.tag), node.wiki_markup, node.contents)
        if isinstance(node, HTMLEntity):
            try:
                return node.normalize()
            except ValueError:
                return ""
        if isinstance(node, ExternalLink):
            return self._render(node.title) if node.brackets and node.title else ""
        return ""  # comments, {{{arguments}}}, what parse() left unbuilt

    def _value(self, value) -> str:
        """A link's text or a parameter's value rendered: mwparserfromhell's Wikicode, or a flat one's text pieces."""
        return "".join(map(_text, value)) if isinstance(value, list) else self._render(value)

    def _link(self, title: str, text) -> str:
        if _link_hidden(title):
            return ""
        title = title.strip().lstrip(":").strip()
        if text is not None:
            text = self._value(text)
            if text.strip():
                return text
            return re.sub(r"\s*[（(][^（()）]*[)）]\s*$", "", title.split(":", 1)[-1])  # pipe trick
        return title

    def _template(self, name: str, params) -> str:
        """`params`: mwparserfromhell's Parameters or wikiparse's FlatParams (name, value, showkey)."""
        spec = self._template_kind(name)
        if spec is None:
            return ""
        if spec == "convert":
            vals = [_source(p.value).strip() for p in params if not p.showkey][:2]
            return self._render(self.parse(" ".join(vals)))
        if spec == "date":
            if name == "bd":
                p = [self._param(params, k) for k in "1234"]
                text = f"{p[0]}{p[1]}—{p[2]}{p[3]}" if any(p) else ""
            else:
                text = self._date(params)
                ymd = [self._param(params, k) for k in "123456"] if DATE_TEMPLATES[name] else ()
                if ymd and all(v.isdecimal() for v in ymd):
                    y, m, d, by, bm, bd = map(int, ymd)
                    text += f"（{y - by - ((m, d) < (bm, bd))}歲）"
            if text:
                self.counts["inline_templates"] = self.counts.get("inline_templates", 0) + 1
            return text
        for key in spec:
            value = _get(params, key)
            if value is not None:
                text = self._value(value)
                if text.strip():
                    self.counts["inline_templates"] = self.counts.get("inline_templates", 0) + 1
                    return text.strip()
        return ""

    def _param(self, params, key: str) -> str:
        value = _get(params, key)
        return self._value(value).strip() if value is not None else ""

    def _date(self, params) -> str:
        """Positional parameters 1-3 (year, month, day) → 1950年1月1日, as far as they are given."""
        out = ""
        for key, unit in zip("123", "年月日"):
            v = self._param(params, key)
            if not v:
                break
            out += (str(int(v)) if v.isdecimal() else v) + unit
        return out

    def _tag(self, tag: str, wiki_markup: str | None, contents) -> str:
        """`contents`: Wikicode or a FlatTag's text pieces."""
        tag = tag.strip().lower()
        if wiki_markup:
            if tag in ("table",):
                return ""
            if tag == "hr":
                return "\n"
            if tag in ("li", "dt", "dd"):
                return ""
            return self._value(contents) if contents is not None else ""
        if tag in DROP_TAGS:
            return ""
        if tag == "br":
            return "\n"
        if tag == "nowiki":
            return _source(contents) if contents is not None else ""
        if contents is None:
            return ""
        inner = self._value(contents)
        return f"\n\n{inner}\n\n" if tag in ("p", "div", "blockquote", "poem") else inner

    # ---- the whole page -------------------------------------------------------------------------------
    def render(self, wikitext: str) -> str:
        self._protected: list[str] = []
        self._rules: dict[str, str] = {}
        text = _PUA.sub("", wikitext)
        text = _COMMENT.sub("", text)
        text = _REF.sub("", text)
        text = _MAGIC.sub("", text)
        while "-{" in text:  # innermost conversion markup first; nested results are protected already
            text, found = _CONVERSION.subn(self._conversion, text)
            if not found:
                break
        code = self.parse(text)
        groups = []
        for t in code.nodes if _NOTETA.search(text) else ():
            if isinstance(t, FlatTemplate) and _normal_name(t.name) == "noteta" or (
                    isinstance(t, Template) and _template_name(t) == "noteta"):
                for p in t.params:
                    name, value = str(p.name).strip(), _source(p.value).strip()
                    if name.isdigit() and value:
                        self._add_rules(value)
                    elif _GROUP_PARAM.match(name) and value:
                        groups.append(value)
        out = self._render(code, top=True)
        out, n = _LEFTOVER.subn("", out)
        if n:
            self.counts["markup_leftovers"] = self.counts.get("markup_leftovers", 0) + n
        out = RuleTable(self._rules).apply(out, lambda mark: mark)
        out = self._apply_groups(groups, out)
        return normalise_whitespace(self._expand(self.converter.convert(out)))

    def _apply_groups(self, names: list[str], text: str) -> str:
        known = tuple(dict.fromkeys(n for n in names if n in self.groups))
        if len(known) < len(names):
            self.counts["unknown_groups"] = self.counts.get("unknown_groups", 0) + len(names) - len(known)
        if not known:
            return text
        self.counts["groups_applied"] = self.counts.get("groups_applied", 0) + len(known)
        return self._group_table(known).apply(text, self._protect)

    def _expand(self, text: str) -> str:
        """Put the protected spans back (they may nest)."""
        while _PUA.search(text):
            text = _PUA.sub(lambda m: self._protected[ord(m.group(0)) - _PUA_FIRST], text)
        return text


def normalise_whitespace(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = _EMPTY_BRACKETS.sub("", text)
    lines = [ln.strip() for ln in text.split("\n")]
    text = "\n".join(lines)
    return _BLANKS.sub("\n\n", text).strip()


class WikitextCleaner(BaseFilter):
    """Render wiki documents' wikitext as Taiwan-form plain text (module docstring); others pass through.

    A page that renders to nothing (only templates, tables, references) is dropped as `empty`, one
    the parser fails on as `unparseable`; the exclusion writer keeps its wikitext.

    Args:
        reference_headings: section headings dropped with their subsections (default: references.py's list).
        extra_inline_templates: more inline templates, name → parameter(s) whose text is kept.
        keep_headings: keep heading text as its own paragraph (default: a heading is only a paragraph break).
        convert: converter setting for text outside conversion markup (convert.py: mediawiki,
            mediawiki+phrases, s2tw, s2twp or an OpenCC config).
        phrases: extra Taiwan phrases for `mediawiki+phrases`.
        cgroups: where conversion groups come from (cgroups.py): "dump" (the Module:CGroup pages of
            `dump_paths`), a pinned extract (JSON path), or None (groups not applied).
        dump_paths: the wiki dump inputs, for `cgroups: dump`.
        exclusion_writer: keeps dropped pages (pipeline/removed.py).
    """

    name = "🧹 wikitext → text"
    type = "✂️ - FORMAT"

    def __init__(self, reference_headings: list[str] | None = None, extra_inline_templates: dict | None = None,
                 keep_headings: bool = False, convert: str = MEDIAWIKI, phrases=None, cgroups: str | None = None,
                 dump_paths=(), exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.kwargs = dict(reference_headings=reference_headings, extra_inline_templates=extra_inline_templates,
                           keep_headings=keep_headings, convert=convert, phrases=phrases)
        self.cgroups, self.dump_paths = cgroups, list(dump_paths or ())
        self._wikitext = None

    @property
    def wikitext(self) -> Wikitext:
        # Built in the worker: converter handles do not pickle.
        if self._wikitext is None:
            from twbert.pipeline.cgroups import load_groups

            groups = load_groups(self.cgroups, self.dump_paths)
            self.stat_update("cgroups_loaded", value=len(groups))
            self._wikitext = Wikitext(**self.kwargs, groups=groups)
        return self._wikitext

    def __getstate__(self):
        return {**self.__dict__, "_wikitext": None}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get("source") != "wiki":
            return True
        w = self.wikitext
        w.counts = {}
        try:
            text = w.render(doc.text)
        except Exception as e:  # mwparserfromhell is robust, but one odd page must not stop a dump
            from datatrove.utils.logging import logger

            logger.warning(f"wikitext of {doc.metadata.get('title')!r} ({doc.id}) could not be rendered: {e!r}")
            return False, "unparseable"
        for k, v in w.counts.items():
            self.stat_update(k, value=v)
        if not text:
            return False, "empty"
        doc.text = text
        return True
