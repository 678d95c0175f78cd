"""Llama Stack-style ``${env.NAME}`` substitution for distribution YAML.

Forms:
- ``${env.NAME}``            the value; an error naming the key path if unset
- ``${env.NAME:=default}``   the value, or ``default`` when unset or empty
- ``${env.NAME:+value}``     ``value`` when NAME is set and non-empty, else empty

A scalar that is exactly one substitution and resolves to the empty string
becomes ``None``, so optional settings and provider ids can be switched off
by leaving a variable unset (as in Llama Stack).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from vistack.api import ConfigError

_PATTERN = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)(?:(:=|:\+)((?:[^{}]|\{[^{}]*\})*))?\}")


def substitute(value: Any, env: Mapping[str, str] | None = None, *, where: str = "", path: str = "") -> Any:
    """Recursively substitute env references in ``value`` (dicts, lists, strings)."""
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {k: substitute(v, env, where=where, path=f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, where=where, path=f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        return _substitute_str(value, env, where, path)
    return value


def _substitute_str(text: str, env: Mapping[str, str], where: str, path: str) -> Any:
    def replace(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        current = env.get(name)
        if op == ":=":
            return current if current else _substitute_str(arg or "", env, where, path) or ""
        if op == ":+":
            return (_substitute_str(arg or "", env, where, path) or "") if current else ""
        if current is None:
            raise ConfigError(
                f"{where}: {path or '(root)'}: environment variable {name} is not set "
                f"(write ${{env.{name}:=default}} to give a default)"
            )
        return current

    result = _PATTERN.sub(replace, text)
    if result == "" and _PATTERN.fullmatch(text):
        return None
    return result
