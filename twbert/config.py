"""YAML configs layered over documented defaults.

The defaults live in `twbert/defaults/<kind>.yaml`, commented key by key: that file *is* the
reference for every option. A user config only names what it changes; an unknown key is an error
that names the key and the file, so a typo never silently falls back to a default. Every value is
type-checked as it is merged (types derived from the defaults, `twbert.schema`), so a wrong type is
an error that names the key before any work starts, never a `TypeError` inside a task.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from twbert import schema as types
from twbert.errors import UsageError


def defaults(kind: str) -> dict[str, Any]:
    """The default config of `kind` ("build" or "train")."""
    text = resources.files("twbert").joinpath(f"defaults/{kind}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def schema(kind: str) -> types.Section:
    """The type of every key of `kind`'s config (twbert/schema.py)."""
    return types.schema(kind, defaults(kind))


def merge(base: dict, override: dict, source: str, path: str = "", schema: types.Section | None = None) -> dict:
    """Deep-merge `override` into a copy of `base`; keys absent from `base` are errors.

    A key whose default is an empty mapping (`{}`) is open: any keys may go under it. With `schema`
    (the type of `base`), every value merged is checked against its key's type.
    """
    out = copy.deepcopy(base)
    if override is not None and not isinstance(override, dict):
        raise UsageError(f"{source}: config key '{path}' must be a mapping of keys, got {types.show(override)}")
    for key, value in (override or {}).items():
        where = f"{path}.{key}" if path else str(key)
        if key not in base:
            known = ", ".join(sorted(map(str, base))) or "(none)"
            raise UsageError(f"{source}: unknown config key '{where}'. Known keys here: {known}")
        sub = schema.fields.get(str(key)) if schema is not None else None
        if isinstance(base[key], dict) and base[key] and (isinstance(value, dict) or value is None):
            # A section left empty in YAML (`dedup:` with everything under it commented out) is null.
            out[key] = merge(base[key], value, source, where, sub if isinstance(sub, types.Section) else None)
        else:
            if sub is not None:
                sub.check(value, where, source)
            out[key] = copy.deepcopy(value)
    return out


def load(kind: str, path: str | Path | None = None, overrides: dict | None = None) -> dict[str, Any]:
    """Defaults of `kind`, then the YAML file at `path`, then `overrides` (from CLI flags)."""
    cfg = defaults(kind)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        try:
            user = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(user, dict):
            raise UsageError(f"{path}: a config must be a mapping of keys, got {type(user).__name__}")
        cfg = merge(cfg, user, str(path), schema=schema(kind))
    if overrides:
        cfg = merge(cfg, overrides, "command line", schema=schema(kind))
    return cfg


def set_path(cfg: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, for CLI flags that override one key."""
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
