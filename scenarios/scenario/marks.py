"""YAML with marks: a scenario file composed into plain values.

Every value's line is remembered; the document is bounded in depth and in the values it
stands for with its aliases expanded (:mod:`scenarios.yamlfile`), and the file in size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from scenarios.errors import Problem
from scenarios.yamlfile import BoundedLoader, YamlLimitError

# --- problems ------------------------------------------------------------------------
Path_ = tuple[str | int, ...]


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- YAML with marks -------------------------------------------------------------------
class MarkedLoader(BoundedLoader):
    """A bounded SafeLoader without the timestamp resolver: times stay the strings the user wrote."""


@dataclass
class MarkedDoc:
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)  # value node line (1-based)
    key_lines: dict[Path_, int] = field(default_factory=dict)  # line of the key naming the value
    problems: list[Problem] = field(default_factory=list)

    def line(self, path: Path_, key: bool = False) -> int | None:
        if key and path in self.key_lines:
            return self.key_lines[path]
        p = path
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def error(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.source, self.line(path, key), dotted(path), message))


def _build(
    loader: MarkedLoader, node: yaml.Node, path: Path_, doc: MarkedDoc, depth: int = 0
) -> Any:
    if depth > 50:
        doc.error(path, "nesting is too deep (recursive alias?)")
        return None
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, path + (i,), doc, depth + 1) for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool | float) or isinstance(key, bool):
                doc.problems.append(
                    Problem(
                        doc.source,
                        key_node.start_mark.line + 1,
                        dotted(path),
                        f"mapping keys must be plain words, got {key!r}",
                    )
                )
                continue
            key = str(key)
            if key in out:
                doc.problems.append(
                    Problem(
                        doc.source,
                        key_node.start_mark.line + 1,
                        dotted(path + (key,)),
                        f"duplicate key (first given on line {doc.key_lines[path + (key,)]})",
                    )
                )
                continue
            doc.key_lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, path + (key,), doc, depth + 1)
        return out
    return None


def compose_marked(text: str, source: str) -> tuple[Any, MarkedDoc]:
    doc = MarkedDoc(source)
    try:
        loader = MarkedLoader(text)  # the reader refuses control characters up front
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(source, None, "", f"not valid YAML: {exc}"))
        return None, doc
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(
                Problem(
                    source, 1, "", "the file is empty; a scenario is a mapping with name and steps"
                )
            )
            return None, doc
        return _build(loader, node, (), doc), doc
    except YamlLimitError as exc:
        doc.problems.append(Problem(source, exc.line, "", str(exc.problem)))
        return None, doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(s for s in (exc.context, exc.problem) if s)
        doc.problems.append(
            Problem(source, mark.line + 1 if mark else None, "", f"not valid YAML: {what}")
        )
        return None, doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(source, None, "", f"not valid YAML: {exc}"))
        return None, doc
    finally:
        loader.dispose()
