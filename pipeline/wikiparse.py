"""mwparserfromhell's parse, building only what a renderer reads.

mwparserfromhell tokenizes in C but builds its node tree in Python, and on zhwiki pages the
building is most of the cost: infoboxes, navboxes, tables and file links become thousands of
nodes that the renderer (wikitext.py) then throws away, and each kept link or template costs a
dozen objects. `PruningParser(decide).parse(text)` asks `decide` about each template, wikilink
and tag from the head of its tokens (its name, title or tag name, when that is plain text):
- DROP (the renderer shows nothing for it, whatever it holds): skip to its closing token and
  leave an `Unbuilt` node holding the tokens;
- FLAT: a link, template or tag holding only text becomes a `FlatLink` / `FlatTemplate` /
  `FlatTag`, plain strings read straight from the tokens as mwparserfromhell's builder would
  name them;
- BUILD, or anything else: mwparserfromhell's own node.
A heading whose title is only text becomes a `FlatHeading`.
`str()` of these nodes builds them from their tokens, so a tree that is stringified (a link title
holding a dropped template) reads exactly as the source. The renderer must answer DROP only for
what it renders as nothing whatever the contents (tests/test_wikitext.py compares with a full parse).
"""

from __future__ import annotations

from collections.abc import Callable

from mwparserfromhell.nodes import Node, Text
from mwparserfromhell.parser import Parser
from mwparserfromhell.parser import tokens as T
from mwparserfromhell.parser.builder import Builder

# Tokens are dicts (mwparserfromhell's Token): `token["text"]` reads one without the attribute hook.
TEMPLATE, LINK, TAG = "template", "link", "tag"
DROP, FLAT, BUILD = "drop", "flat", "build"

# Per kind: the opening token, what ends its name, the separators a flat one may hold, and the
# tokens that open and close one level.
_SPANS = {
    T.TemplateOpen: (TEMPLATE, (T.TemplateParamSeparator, T.TemplateClose),
                     (T.TemplateParamSeparator, T.TemplateParamEquals), (T.TemplateOpen,), (T.TemplateClose,)),
    T.WikilinkOpen: (LINK, (T.WikilinkSeparator, T.WikilinkClose), (T.WikilinkSeparator,),
                     (T.WikilinkOpen,), (T.WikilinkClose,)),
    T.TagOpenOpen: (TAG, (T.TagAttrStart, T.TagCloseOpen, T.TagCloseSelfclose), (),
                    (T.TagOpenOpen,), (T.TagCloseClose, T.TagCloseSelfclose)),
}

_ATTRIBUTE = (T.Text, T.TagAttrStart, T.TagAttrEquals, T.TagAttrQuote)

# decide(kind, name, wiki_markup) → DROP (the renderer shows nothing for it, whatever it holds),
# FLAT (the renderer reads FlatLink / FlatTemplate / FlatTag when it holds only text) or BUILD. `name` is
# the template name, link title or tag name as written; `wiki_markup` is the tag's (`{|`, `''`).
Decide = Callable[[str, str, "str | None"], str]


class Unbuilt(Node):
    """A subtree kept as its tokens (in source order), for what the renderer shows nothing of; `str()`
    is its source."""

    def __init__(self, tokens: list):
        super().__init__()
        self.tokens = tokens

    def __str__(self) -> str:
        return str(Builder().build(list(self.tokens)))


class FlatLink(Unbuilt):
    """`[[title|text]]` holding only text: `title` as written, `text` its text pieces (None: no `|`)."""

    def __init__(self, tokens: list, title: str, text: list[str] | None):
        super().__init__(tokens)
        self.title, self.text = title, text


class FlatTag(Unbuilt):
    """`<tag …>text</tag>` (or `''text''`, a self-closing `<br/>`) whose attributes and contents are only
    text: `tag` the name as written, `wiki_markup` as mwparserfromhell has it, `contents` its text
    pieces (empty when self-closing)."""

    def __init__(self, tokens: list, tag: str, wiki_markup: str | None, contents: list[str]):
        super().__init__(tokens)
        self.tag, self.wiki_markup, self.contents = tag, wiki_markup, contents


class FlatParam:
    """One parameter of a FlatTemplate, as mwparserfromhell names it: `name` as written (a positional
    one is numbered, `showkey` False), `value` its text pieces."""

    __slots__ = ("name", "value", "showkey")

    def __init__(self, name: str, value: list[str], showkey: bool):
        self.name, self.value, self.showkey = name, value, showkey


class FlatTemplate(Unbuilt):
    """`{{name|…}}` holding only text: `name` as written and its FlatParams."""

    def __init__(self, tokens: list, name: str, params: list[FlatParam]):
        super().__init__(tokens)
        self.name, self.params = name, params


class FlatHeading(Unbuilt):
    """`== title ==` whose title is only text: `level`, and `title` its text pieces."""

    def __init__(self, tokens: list, level: int, title: list[str]):
        super().__init__(tokens)
        self.level, self.title = level, title


class _PruningBuilder(Builder):
    def __init__(self, decide: Decide):
        super().__init__()
        self._decide = decide

    def _handle_token(self, token):
        kind = type(token)
        if kind is T.Text:
            return Text(token["text"])  # most tokens: as the builder's own handler, without its lookups
        node = None
        if kind in _SPANS:
            node = self._shortcut(token, *_SPANS[kind])
        elif kind is T.HeadingStart:
            node = self._flat_heading(token)
        return node if node is not None else super()._handle_token(token)

    def _take(self, end: int, token) -> list:
        """Remove the span's tokens (from `token` to index `end`) and return them in source order."""
        span = self._tokens[end:]
        del self._tokens[end:]
        span.append(token)
        span.reverse()
        return span

    def _shortcut(self, token, kind, name_ends, separators, opens, closes) -> Node | None:
        """An Unbuilt / Flat node for the span opened by `token` when `decide` allows, else None."""
        toks = self._tokens  # reversed: the builder pops from the end
        i = len(toks) - 1
        name = []
        while i >= 0 and type(toks[i]) is T.Text:
            name.append(toks[i]["text"])
            i -= 1
        if i < 0 or not isinstance(toks[i], name_ends):
            return None  # a name built from markup: let the renderer see it
        name = "".join(name)
        wiki_markup = token.wiki_markup if kind == TAG else None
        how = self._decide(kind, name, wiki_markup)
        if how == DROP:
            end = self._close(i, opens, closes)
            return None if end is None else Unbuilt(self._take(end, token))
        if how != FLAT:
            return None
        if kind == TAG:
            end, contents = self._flat_tag_end(i)
            return None if end is None else FlatTag(self._take(end, token), name, wiki_markup, contents)
        end, pieces = self._flat_pieces(i, separators, closes)
        if end is None:
            return None
        if kind == LINK:
            if len(pieces) > 1:
                return None  # two `|` at the top: the builder's own reading is the reference
            return FlatLink(self._take(end, token), name, pieces[0][1] if pieces else None)
        params = _flat_params(pieces)
        return None if params is None else FlatTemplate(self._take(end, token), name, params)

    def _close(self, i: int, opens, closes) -> int | None:
        depth = 1
        toks = self._tokens
        while i >= 0:
            t = toks[i]
            if isinstance(t, closes):
                depth -= 1
                if depth == 0:
                    return i
            elif isinstance(t, opens):
                depth += 1
            i -= 1
        return None  # unbalanced: the full builder reports it as it always did

    def _flat_pieces(self, i: int, separators, closes) -> tuple[int | None, list]:
        """(index of the close, [(separator type, text pieces), …]) when only text and `separators`
        come before the close, else (None, [])."""
        toks = self._tokens
        pieces: list[tuple[type, list[str]]] = []
        while i >= 0:
            t = toks[i]
            kind = type(t)
            if kind is T.Text:
                pieces[-1][1].append(t["text"])  # the first token is a separator or the close
            elif kind in separators:
                pieces.append((kind, []))
            elif kind in closes:
                return i, pieces
            else:
                break
            i -= 1
        return None, []

    def _flat_tag_end(self, i: int) -> tuple[int | None, list[str] | None]:
        """(index of the closing token, text pieces of the contents) for a tag whose attributes and
        contents are only text; (None, None) otherwise."""
        toks = self._tokens
        while i >= 0 and type(toks[i]) in _ATTRIBUTE:  # attributes are never shown
            i -= 1
        if i < 0:
            return None, None
        if type(toks[i]) is T.TagCloseSelfclose:
            return i, []  # mwparserfromhell's Tag reads empty contents, not None, when self-closing
        if type(toks[i]) is not T.TagCloseOpen:
            return None, None
        i -= 1
        contents = []
        while i >= 0 and type(toks[i]) is T.Text:
            contents.append(toks[i]["text"])
            i -= 1
        if i < 0 or type(toks[i]) is not T.TagOpenClose:
            return None, None
        i -= 1
        while i >= 0 and type(toks[i]) is T.Text:  # the closing tag's name
            i -= 1
        if i < 0 or type(toks[i]) is not T.TagCloseClose:
            return None, None
        return i, contents

    def _flat_heading(self, token) -> FlatHeading | None:
        toks = self._tokens
        i = len(toks) - 1
        title = []
        while i >= 0 and type(toks[i]) is T.Text:
            title.append(toks[i]["text"])
            i -= 1
        if i < 0 or type(toks[i]) is not T.HeadingEnd:
            return None
        return FlatHeading(self._take(i, token), token.level, title)


def _flat_params(pieces: list) -> list[FlatParam] | None:
    """A template's parameters as mwparserfromhell's builder names them: `key=value` shows its key,
    the others are numbered from 1."""
    params, default, k = [], 1, 0
    while k < len(pieces):
        sep, value = pieces[k]
        if sep is not T.TemplateParamSeparator:
            return None
        if k + 1 < len(pieces) and pieces[k + 1][0] is T.TemplateParamEquals:
            if k + 2 < len(pieces) and pieces[k + 2][0] is T.TemplateParamEquals:
                return None  # not something the tokenizer writes
            params.append(FlatParam("".join(value), pieces[k + 1][1], True))
            k += 2
        else:
            params.append(FlatParam(str(default), value, False))
            default += 1
            k += 1
    return params


class PruningParser(Parser):
    """`parse(text) -> Wikicode` like mwparserfromhell.parse, with `decide`'s shortcuts. One per thread."""

    def __init__(self, decide: Decide):
        super().__init__()
        self._builder = _PruningBuilder(decide)
