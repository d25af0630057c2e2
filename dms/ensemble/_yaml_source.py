"""YAML text -> plain data plus the line of every value, within fixed bounds.

PyYAML's `safe_load` expands aliases eagerly, so a few hundred bytes of nested aliases
("billion laughs") can take minutes and gigabytes. Here the document is only *composed*
(aliases stay shared nodes), the size of its expansion is counted over that graph in
time proportional to the file, and only then is it turned into Python values. Duplicate
keys, unknown tags and recursive aliases are reported instead of silently accepted.

NuNet's own ensembles write a workload once under a top-level key that exists only to
carry an anchor (`web_template: &svc ...`, then `allocations: {web: *svc}`). Such keys
are *templates*: the reader names them, so the loader can accept them without taking
them for misspelt sections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import attrs
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dms.ensemble._problems import EnsembleUnreadable, Path, Problem

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader (libyaml-backed when available): safe tags only, marks on every node."""


_TEXT_TAGS = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_MERGE = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


@attrs.frozen
class YamlLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_values: int = 1_000_000  # after alias expansion
    max_depth: int = 64


@attrs.frozen
class YamlDocument:
    file: str
    data: object
    lines: dict[Path, int]  # 1-based line of the value at each path
    problems: tuple[Problem, ...] = ()  # duplicate keys, unsupported tags, too deep
    templates: frozenset[str] = frozenset()  # top-level keys holding an anchor used elsewhere

    def line_of(self, path: Path) -> int | None:
        """Line of `path`, or of its nearest ancestor that the YAML has."""
        while True:
            line = self.lines.get(path)
            if line is not None or not path:
                return line
            path = path[:-1]


class _TooBig(Exception):
    pass


def read_yaml(text: str | bytes, *, file: str, limits: YamlLimits | None = None) -> YamlDocument:
    """Parse one YAML document. Raises `EnsembleUnreadable` with a located problem for
    anything that is not a bounded, safe YAML document. Problems inside the data (a
    duplicate key, an unsupported tag) do not stop reading: they are returned in
    `YamlDocument.problems` and the offending value is dropped or read as null."""
    limits = limits or YamlLimits()

    def unreadable(message: str, line: int | None = None) -> EnsembleUnreadable:
        return EnsembleUnreadable([Problem(file, (), message, line)])

    size = len(text.encode() if isinstance(text, str) else text)
    if size > limits.max_bytes:
        raise unreadable(f"over the size limit: ensemble files are limited to {limits.max_bytes} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise unreadable(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise unreadable(f"not valid YAML: {what}", line) from None
    except yaml.YAMLError as exc:
        raise unreadable(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise unreadable("YAML nesting is too deep") from None
    if root is None:
        return YamlDocument(file, None, {})
    try:
        _check_expansion(root, limits)
    except _TooBig as exc:
        raise unreadable(str(exc)) from None
    builder = _Builder(file, limits)
    data = builder.build(root, (), 0)
    return YamlDocument(file, data, builder.lines, tuple(builder.problems), _templates(root))


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        yield from node.value
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _check_expansion(root: Node, limits: YamlLimits) -> None:
    """Count the values the document expands to, visiting each shared node once.

    Iterative post-order over the alias graph: O(nodes + edges) whatever the expansion
    factor, and a node met again while still open is a recursive alias."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            total = 1 + sum(expanded[id(child)] for child in _children(node))
            if total > limits.max_values:
                line = node.start_mark.line + 1
                raise _TooBig(
                    f"YAML aliases at line {line} expand to more than "
                    f"{limits.max_values} values (an alias bomb?)"
                )
            expanded[key] = total
            continue
        if key in expanded:
            continue
        if key in open_nodes:
            raise _TooBig(f"recursive YAML alias at line {node.start_mark.line + 1}")
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            child_key = id(child)
            if child_key in open_nodes:
                raise _TooBig(f"recursive YAML alias at line {child.start_mark.line + 1}")
            if child_key not in expanded:
                stack.append((child, False))


def _templates(root: Node) -> frozenset[str]:
    """Top-level keys whose value is an anchor that an alias or a `<<` merge uses.

    Composing makes every alias the anchored node itself, so a value is used elsewhere
    when the graph reaches it from more than one place. It is the anchor (not an alias
    of something defined earlier) when it starts after its key: YAML defines anchors
    before their aliases."""
    if not isinstance(root, MappingNode):
        return frozenset()
    uses: Counter[int] = Counter()
    visited: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for child in _children(node):
            uses[id(child)] += 1
            stack.append(child)
    return frozenset(
        key.value
        for key, value in root.value
        if isinstance(key, ScalarNode)
        and uses[id(value)] > 1
        and value.start_mark.index > key.start_mark.index
    )


class _Builder:
    """Turns the composed graph into dicts, lists and scalars, noting lines."""

    def __init__(self, file: str, limits: YamlLimits) -> None:
        self.file = file
        self.limits = limits
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.constructor = _Loader("")

    def problem(self, path: Path, node: Node, message: str) -> None:
        self.problems.append(Problem(self.file, path, message, node.start_mark.line + 1))

    def build(self, node: Node, path: Path, depth: int) -> object:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if depth > self.limits.max_depth:
            self.problem(path, node, f"nested deeper than {self.limits.max_depth} levels")
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            self.problem(path, node, f"unsupported YAML tag {node.tag}")
            return None
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, MappingNode)
        return self.mapping(node, path, depth)

    def scalar(self, node: ScalarNode, path: Path) -> object:
        if node.tag in _TEXT_TAGS:
            return node.value
        construct = SafeConstructor.yaml_constructors.get(node.tag)
        if construct is None or node.tag == _MERGE:
            self.problem(path, node, f"unsupported YAML tag {node.tag}")
            return None
        try:
            return construct(self.constructor, node)
        except (yaml.YAMLError, ValueError) as exc:
            self.problem(path, node, f"bad {node.tag.rsplit(':', 1)[-1]} value: {exc}")
            return None

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, object]:
        result: dict[str, object] = {}
        merged: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self.merge_sources(value_node, path, depth))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(path, key_node, "mapping keys must be plain scalars")
                continue
            key = key_node.value
            if key in result:
                self.problem((*path, key), key_node, f"duplicate key {key!r}")
                continue
            result[key] = self.build(value_node, (*path, key), depth + 1)
            self.lines[(*path, key)] = key_node.start_mark.line + 1
        # `<<` merges never override keys written in the mapping itself
        return {**merged, **result}

    def merge_sources(self, node: Node, path: Path, depth: int) -> dict[str, object]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, object] = {}
        for source in reversed(sources):  # earlier sources win
            if not isinstance(source, MappingNode):
                self.problem(path, source, "`<<` merges only mappings")
                continue
            merged.update(self.mapping(source, path, depth + 1))
        return merged
