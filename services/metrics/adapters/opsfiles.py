"""Writing the generated ops files: YAML and JSON text, deterministic, and the staleness check.

Every file starts with a header naming the command that made it, so CI can regenerate with the
same options and compare (a file edited by hand, or a map changed without `make ops`, is stale).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings (PromQL) as literal blocks, keys in given order."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &id001 anchors: every value written out where it applies


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def header_lines(command: str) -> str:
    """The comment every generated YAML file starts with."""
    return (
        "# Generated from the process map: do not edit, run `make ops` (see README, Alerts).\n"
        f"# {command}\n"
    )


def yaml_text(document: Any, command: str) -> str:
    """A YAML file with the generator's header."""
    body = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )
    return header_lines(command) + body


def json_text(document: Any) -> str:
    """A JSON file (dashboards carry no comments; their `description` names the generator)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render(documents: Mapping[str, Any], command: str) -> dict[str, str]:
    """Relative path -> file text, by extension."""
    return {
        path: json_text(doc) if path.endswith(".json") else yaml_text(doc, command)
        for path, doc in sorted(documents.items())
    }


def stale_files(out: Path, texts: Mapping[str, str]) -> list[str]:
    """Generated files whose committed text differs (or that are missing)."""
    stale = []
    for path, text in texts.items():
        target = out / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def write_files(out: Path, texts: Mapping[str, str]) -> list[str]:
    """Write every file (creating folders); returns the paths that changed."""
    changed = stale_files(out, texts)
    for path in changed:
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(texts[path], encoding="utf-8")
    return changed


def generated_command(path: Path) -> str | None:
    """The command recorded in a generated YAML file's header, None if it has none."""
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()[:2]
    if len(lines) == 2 and lines[1].startswith("# python -m metrics.ops"):
        return lines[1][2:]
    return None
