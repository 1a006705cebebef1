"""YAML the user gives (scenario and topology files): bounded in size, depth and expansion.

PyYAML composes a document into a graph in which an alias *is* the node its anchor
names. Nine levels of nine-way aliases fit in 300 bytes and stand for 9^9 values,
and whoever walks the data as a tree (a validator, a marked copy) walks all of them.
:class:`BoundedLoader` counts, while composing, how many values the document stands
for once every alias is expanded, and stops at :data:`MAX_YAML_VALUES` with the line
of the alias that passed it; anchors and merge keys within that budget keep working
(the shipped scenarios use ``<<: *cross-city``).

Invariants: a file is read only up to :data:`MAX_YAML_BYTES`; composition nests at
most :data:`MAX_YAML_DEPTH` levels (PyYAML's composer recurses once per level); an
alias to the value that contains it is refused; the work done is linear in the file
plus :data:`MAX_YAML_VALUES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_VALUES",
    "BoundedLoader",
    "YamlLimitError",
    "load_bounded",
    "read_yaml_text",
]

#: The largest YAML file read (the shipped scenarios are under 10 KiB).
MAX_YAML_BYTES = 1 << 20
#: How deep mappings and sequences may nest.
MAX_YAML_DEPTH = 50
#: How many values (scalars, sequences, mappings) a document may stand for with its
#: aliases expanded; each shipped scenario stands for fewer than 400.
MAX_YAML_VALUES = 100_000


class YamlLimitError(yaml.MarkedYAMLError):
    """A YAML document passes one of the limits; ``problem_mark`` says where, ``problem`` what."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)

    @property
    def line(self) -> int | None:
        """The 1-based line where the limit was passed."""
        return self.problem_mark.line + 1 if self.problem_mark is not None else None


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents nested too deep or standing for too many values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values = 0
        self._expanded: dict[int, int] = {}  # id(node) -> values it stands for, once composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            target = self.anchors.get(event.anchor)
            if target is not None:  # an unknown alias is left to PyYAML's own error
                size = self._expanded.get(id(target))
                if size is None:
                    raise YamlLimitError(
                        f"alias *{event.anchor} refers to a value that contains it",
                        event.start_mark,
                    )
                self._count(size, event.start_mark, f"alias *{event.anchor} takes the document")
            return super().compose_node(parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlLimitError(
                f"values nest more than {MAX_YAML_DEPTH} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._expanded[id(item)] for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._expanded[id(k)] + self._expanded[id(v)] for k, v in node.value)
        self._expanded[id(node)] = size
        self._count(1, node.start_mark, "this value takes the document")
        return node

    def _count(self, values: int, mark: yaml.Mark, what: str) -> None:
        self._values += values
        if self._values > MAX_YAML_VALUES:
            raise YamlLimitError(
                f"{what} past {MAX_YAML_VALUES:,} values with its aliases expanded; "
                "a scenario or topology file needs far fewer (an alias bomb?)",
                mark,
            )


def load_bounded(text: str) -> Any:
    """``yaml.safe_load`` within the limits.

    Raises:
        YamlLimitError: a limit is passed (its ``line`` says where).
        yaml.YAMLError: the text is not YAML.
    """
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_text(path: Path) -> str:
    """The text of a YAML file of at most :data:`MAX_YAML_BYTES`.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is larger than the limit, or not UTF-8 (``UnicodeDecodeError``).
    """
    with path.open("rb") as f:
        data = f.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise ValueError(f"it is larger than {MAX_YAML_BYTES:,} bytes")
    return data.decode("utf-8")
