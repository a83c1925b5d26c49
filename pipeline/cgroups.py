"""Conversion groups: the shared rule sets that `{{NoteTA|G1=IT}}` names (`Module:CGroup/IT`).

They come from one of (config `convert.cgroups`):
- `dump`: the dump's own `Module:CGroup/*` pages (namespace 828), read in a first pass. With a
  multistream index only the bz2 streams holding those titles are decompressed (seconds); a dump
  without an index is read whole (a warning says so).
- a pinned extract: a JSON file `{"source": ..., "revision": ..., "groups": {name: [rule, ...]},
  "aliases": {name: name}}`, where `revision` records what it was taken from (a dump date, a
  page revision, a commit of a repository that mirrors the modules).
- null: no groups.

A module lists its rules as Lua: `Item('AI', 'zh-cn:人工智能; zh-tw:人工智慧;')` or
`{ type = 'item', original = 'AI', rule = 'zh-cn:…; zh-tw:…;' }`; a module that is only
`return require('Module:CGroup/X')` is an alias of X. Anything else in a module is ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from datatrove.utils.logging import logger

from twbert.errors import UsageError

_ITEM = re.compile(r"""\bItem\s*\(\s*(?:nil|(["'])(?:\\.|(?!\1).)*\1)\s*,\s*(["'])(?P<rule>(?:\\.|(?!\2).)*)\2""", re.S)
_RULE_FIELD = re.compile(r"""\brule\s*=\s*(["'])(?P<rule>(?:\\.|(?!\1).)*)\1""", re.S)
_REQUIRE = re.compile(r"""^\s*return\s+require\s*\(?\s*(["'])(?:Module|模[块塊組组]):CGroup/(?P<name>[^"']+)\1\s*\)?\s*;?\s*$""")
_LUA_COMMENT = re.compile(r"--\[(=*)\[.*?\]\1\]|--[^\n]*", re.S)
_TITLE = re.compile(r"^[^:]+:CGroup/(?P<name>.+)$")


def parse_module(lua: str) -> list[str]:
    """The rule bodies of one `Module:CGroup/*` page, in order."""
    lua = _LUA_COMMENT.sub("", lua)
    found = [(m.start(), m["rule"]) for m in _ITEM.finditer(lua)] + [(m.start(), m["rule"]) for m in _RULE_FIELD.finditer(lua)]
    return [rule.replace("\\'", "'").replace('\\"', '"') for _, rule in sorted(found) if rule.strip()]


def alias_target(lua: str) -> str | None:
    m = _REQUIRE.match(_LUA_COMMENT.sub("", lua).strip())
    return m["name"] if m else None


def group_name(title: str) -> str | None:
    """`Module:CGroup/IT` (or `模块:CGroup/IT`) → `IT`; sub-pages (`/doc`, `/core`) → None."""
    m = _TITLE.match(title)
    if not m or "/" in m["name"] or m["name"].lower() in ("core", "preload", "sandbox", "doc"):
        return None
    return m["name"]


def groups_from_pages(pages) -> dict[str, list[str]]:
    """(title, lua) pairs → {group: rules}, aliases resolved (an alias of a missing group is dropped)."""
    groups, aliases = {}, {}
    for title, lua in pages:
        name = group_name(title)
        if name is None:
            continue
        target = alias_target(lua)
        if target is not None:
            aliases[name] = target
        else:
            groups[name] = parse_module(lua)
    return resolve(groups, aliases)


def resolve(groups: dict[str, list[str]], aliases: dict[str, str]) -> dict[str, list[str]]:
    out = dict(groups)
    for name, target in aliases.items():
        seen = {name}
        while target in aliases and target not in seen:
            seen.add(target)
            target = aliases[target]
        if target in groups and name not in out:
            out[name] = groups[target]
    return out


def load_extract(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"convert.cgroups: {path} not found; give `dump`, null, or a pinned extract (JSON)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"convert.cgroups: {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not data.get("revision") or not isinstance(data.get("groups"), dict):
        raise UsageError(f"convert.cgroups: {path} needs a `revision` (what it was extracted from) and a "
                         "`groups` mapping of group name to rule list")
    for name, rules in data["groups"].items():
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise UsageError(f"convert.cgroups: {path}: groups.{name} must be a list of rule strings")
    return resolve(data["groups"], dict(data.get("aliases") or {}))


def _cgroup_offsets(index: str) -> set[int]:
    """Stream offsets whose index lines name a `…:CGroup/…` page."""
    import bz2

    from twbert.pipeline.wiki import _open

    offsets = set()
    with bz2.open(_open(index), "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if ":CGroup/" in line:
                offset, _, rest = line.partition(":")
                title = rest.partition(":")[2].rstrip("\n")
                if _TITLE.match(title):
                    offsets.add(int(offset))
    return offsets


def read_dump_groups(paths) -> dict[str, list[str]]:
    """First pass over the dumps' namespace 828: the `Module:CGroup/*` pages as groups."""
    from twbert.pipeline.wiki import WikiDumpReader, expand_paths, index_path, is_dump_name

    class _ModuleReader(WikiDumpReader):
        def streams(self):
            units = super().streams()
            wanted: dict[str, set[int] | None] = {}
            for u in units:
                if u.path not in wanted:
                    index = index_path(u.path)
                    wanted[u.path] = _cgroup_offsets(index) if index else None
                    if index is None:
                        logger.warning(f"{u.path}: no multistream index; reading the whole dump for Module:CGroup pages")
            return [u for u in units if u.start < 0 or wanted[u.path] is None or u.start in wanted[u.path]]

    files = expand_paths(paths, is_dump_name)
    if not files:
        raise UsageError("convert.cgroups: `dump` needs wiki dump inputs (inputs.wiki)")
    reader = _ModuleReader(files, namespaces=(828,), disambiguation_templates=[])
    return groups_from_pages((d.metadata["title"], d.text) for d in reader.run())


def load_groups(spec: str | None, dump_paths=()) -> dict[str, list[str]]:
    """Groups as `convert.cgroups` says: None → {}, "dump" → from the dumps, else a pinned extract."""
    if spec is None:
        return {}
    if spec == "dump":
        return read_dump_groups(dump_paths) if dump_paths else {}
    return load_extract(spec)
