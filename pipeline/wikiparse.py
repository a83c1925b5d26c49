"""mwparserfromhell's parse, with the subtrees a renderer drops left unbuilt.

mwparserfromhell tokenizes in C but builds its node tree in Python, and on zhwiki pages the
building is most of the cost: infoboxes, navboxes, tables and file links become thousands of
nodes that the renderer (wikitext.py) then throws away. `parse(text, drop)` asks `drop` about
each template, wikilink and tag from the head of its tokens (its name, title or tag name, when
that is plain text) and, when the renderer would show nothing for it, skips to its closing token
and leaves an `Unbuilt` node holding the tokens. `str()` of an `Unbuilt` builds it then, so a
tree that is stringified (a link title holding a dropped template) reads exactly as the source.

Only `drop`'s answer can differ from a full parse, so the renderer must answer True only for
what it renders as nothing whatever the node's contents (tests/test_wikitext.py compares both).
"""

from __future__ import annotations

from collections.abc import Callable

from mwparserfromhell.nodes import Node
from mwparserfromhell.parser import Parser
from mwparserfromhell.parser import tokens as T
from mwparserfromhell.parser.builder import Builder

TEMPLATE, LINK, TAG = "template", "link", "tag"

# Per kind: the opening token, what ends its name, and the tokens that open and close one level.
_SPANS = {
    T.TemplateOpen: (TEMPLATE, (T.TemplateParamSeparator, T.TemplateClose), (T.TemplateOpen,), (T.TemplateClose,)),
    T.WikilinkOpen: (LINK, (T.WikilinkSeparator, T.WikilinkClose), (T.WikilinkOpen,), (T.WikilinkClose,)),
    T.TagOpenOpen: (TAG, (T.TagAttrStart, T.TagCloseOpen, T.TagCloseSelfclose), (T.TagOpenOpen,),
                    (T.TagCloseClose, T.TagCloseSelfclose)),
}

# drop(kind, name, wiki_markup) → True when the renderer shows nothing for this node. `name` is
# the template name, link title or tag name as written; `wiki_markup` is the tag's (`{|`, `''`).
Drop = Callable[[str, str, "str | None"], bool]


class Unbuilt(Node):
    """A subtree kept as its tokens (in source order). It renders as nothing; `str()` is its source."""

    def __init__(self, tokens: list):
        super().__init__()
        self.tokens = tokens

    def __str__(self) -> str:
        return str(Builder().build(list(self.tokens)))


class _PruningBuilder(Builder):
    def __init__(self, drop: Drop):
        super().__init__()
        self._drop = drop

    def _handle_token(self, token):
        span = _SPANS.get(type(token))
        if span is not None:
            end = self._dropped_end(token, *span)
            if end is not None:
                # self._tokens is reversed (the builder pops from the end): the span is [end, len).
                toks = self._tokens[end:]
                del self._tokens[end:]
                toks.append(token)
                toks.reverse()
                return Unbuilt(toks)
        return super()._handle_token(token)

    def _dropped_end(self, token, kind, name_ends, opens, closes) -> int | None:
        """Index of the closing token in self._tokens when `drop` says so, else None."""
        toks = self._tokens
        i = len(toks) - 1
        name = []
        while i >= 0 and not isinstance(toks[i], name_ends):
            if type(toks[i]) is not T.Text:
                return None  # a name built from markup: let the renderer see it
            name.append(toks[i].text)
            i -= 1
        if i < 0 or not self._drop(kind, "".join(name), getattr(token, "wiki_markup", None)):
            return None
        depth = 1
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


class PruningParser(Parser):
    """`parse(text) -> Wikicode` like mwparserfromhell.parse, with `drop`'s subtrees unbuilt. One per thread."""

    def __init__(self, drop: Drop):
        super().__init__()
        self._builder = _PruningBuilder(drop)
