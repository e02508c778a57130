"""YAML documents with source positions.

PyYAML's composer keeps a start mark on every node; we build plain Python values from the nodes and
remember, per path inside the document, where each key and value stood, so that any later error
(config validation, render) can name the file, line and column. libyaml is used when present: it is
what keeps rendering thousands of objects well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Location, Problem

try:  # pragma: no cover - which branch runs depends on how PyYAML was built
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

PathKey = str | int
Path = tuple[PathKey, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Kubernetes decodes YAML into JSON: timestamps and binary stay strings there, so they do here.
_KEEP_AS_STRING = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one YAML file may make the parser build. Manifests of previews come from pull
    requests, so a crafted file must be refused at once, not tie up a runner: aliases are expanded by
    copying, so ten nested anchors of ten aliases each (a "billion laughs" bomb) would build 10^10 nodes.
    Kubernetes' own YAML decoder (go-yaml, since CVE-2019-11253) refuses "excessive aliasing" by a ratio
    rule; envship bounds the absolute amount aliases add, which is simpler to state and to check."""

    max_depth: int = 200                 # nesting levels (libyaml itself stops at 1000)
    max_alias_nodes: int = 100_000       # nodes aliases may add, per file
    max_alias_chars: int = 4 * 1024 * 1024  # text aliases may add, per file


DEFAULT_LIMITS = Limits()


@dataclass
class YamlDoc:
    """One YAML document: its value and where each part of it came from."""

    value: Any
    file: str
    line: int
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # Unquoted scalars holding `${`: after substitution they take the type YAML would give the value.
    plain_refs: set[Path] = field(default_factory=set)

    def at(self, path: Path, key: bool = False) -> Location:
        """The location of the value (or, with key=True, the key) at `path`, or the nearest parent."""
        table = self.key_marks if key else self.marks
        probe = path
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col)
            if not key and probe in self.key_marks:
                line, col = self.key_marks[probe]
                return Location(self.file, line, col)
            probe = probe[:-1]
        return Location(self.file, self.line, 1 if self.line else 0)


class YamlSyntaxError(Exception):
    """Raised with the problems of one file; callers wrap it in their own typed error."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.render() for p in problems))
        self.problems = problems


class _Builder:
    def __init__(self, loader: Any, doc: YamlDoc) -> None:
        self.loader = loader
        self.doc = doc
        self.problems: list[Problem] = []
        self.merged: dict[int, int] = {}  # id(mapping node) -> how many of its pairs came from `<<` merges

    def build(self, node: yaml.Node, path: Path) -> Any:
        mark = node.start_mark
        self.doc.marks[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG or node.tag in _KEEP_AS_STRING:
                if not node.style and "${" in node.value:  # plain style: None (PyYAML) or "" (libyaml)
                    self.doc.plain_refs.add(path)
                return node.value
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        if id(node) not in self.merged:  # an anchored node is built again for each alias: flatten it once
            own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys: merged pairs first, then its own
            self.merged[id(node)] = len(node.value) - own
        result: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, "a mapping key must be a plain value, not a list or mapping",
                              "write the key as a plain name, e.g. 'name: value'")
                continue
            # Keys stay the text written: Kubernetes objects and env names have string keys, and YAML 1.1
            # would otherwise turn `ON:` into True and `80:` into 80.
            key = key_node.value
            if index >= self.merged[id(node)]:  # merged keys may be overridden; the mapping's own may not clash
                if key in own_keys:
                    self._problem(
                        key_node,
                        f"key {key!r} appears twice in the same mapping",
                        "remove one of them; YAML keeps only the last, which hides the first",
                    )
                    continue
                own_keys.add(key)
            child = path + (key,)
            self.doc.key_marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child)
        return result

    def _problem(self, node: yaml.Node, message: str, hint: str = "") -> None:
        loc = Location(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1)
        self.problems.append(Problem(message, loc, hint))


class _Budget:
    """What aliases have added so far in one file."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.nodes = 0
        self.chars = 0


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


@dataclass
class _Shape:
    size: int      # nodes of the subtree once aliases are expanded
    chars: int     # scalar characters of the expanded subtree
    height: int    # nesting levels of the expanded subtree


def _postorder(root: yaml.Node, file: str) -> Iterator[tuple[yaml.Node, list[yaml.Node]]]:
    """Each distinct node after all of its children, without recursion. An alias is the very node its
    anchor names, so a node met again on the path from the root is a recursive alias."""
    on_path: set[int] = set()
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            on_path.discard(id(node))
            yield node, _children(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        on_path.add(id(node))
        stack.append((node, True))
        for child in reversed(_children(node)):
            if id(child) in on_path:
                raise YamlSyntaxError([Problem(
                    "recursive alias: the node anchored here contains an alias to itself",
                    _location(file, child),
                    "an anchor's own content cannot use its alias; write the repeated part out")])
            stack.append((child, False))


def _location(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _check_bounds(root: yaml.Node, file: str, budget: _Budget) -> None:
    """Refuse a document that is nested too deeply or that aliases would blow up, before building it:
    sizes are computed on the graph of distinct nodes, in time linear in the text."""
    shapes: dict[int, _Shape] = {}
    order: list[yaml.Node] = []
    for node, children in _postorder(root, file):
        kids = [shapes[id(c)] for c in children]
        own_chars = len(node.value) if isinstance(node, yaml.ScalarNode) else 0
        shapes[id(node)] = _Shape(1 + sum(k.size for k in kids), own_chars + sum(k.chars for k in kids),
                                  1 + max((k.height for k in kids), default=0))
        order.append(node)
    top = shapes[id(root)]
    limits = budget.limits
    if top.height > limits.max_depth:
        raise YamlSyntaxError([Problem(
            f"the document is nested {top.height} levels deep; envship reads at most {limits.max_depth}",
            _location(file, _deep_node(root, shapes, limits.max_depth)),
            "flatten the structure; no Kubernetes object needs that depth")])
    written_nodes = len(order)
    written_chars = sum(len(n.value) for n in order if isinstance(n, yaml.ScalarNode))
    budget.nodes += top.size - written_nodes
    budget.chars += top.chars - written_chars
    if budget.nodes > limits.max_alias_nodes or budget.chars > limits.max_alias_chars:
        anchor, copies = _most_copied(order, shapes)
        raise YamlSyntaxError([Problem(
            f"aliases expand this file too far: the node anchored here is copied {copies:,} times "
            f"(aliases may add at most {limits.max_alias_nodes:,} nodes and "
            f"{limits.max_alias_chars // (1024 * 1024)} MiB of text to one file)",
            _location(file, anchor),
            "write the repeated parts out, or use fewer aliases; nested aliases multiply (a YAML bomb)")])


def _deep_node(root: yaml.Node, shapes: dict[int, _Shape], depth: int) -> yaml.Node:
    """The node at `depth` on the deepest path: where the nesting goes too far."""
    node = root
    for _ in range(depth):
        children = _children(node)
        if not children:
            break
        node = max(children, key=lambda c: shapes[id(c)].height)
    return node


def _most_copied(order: list[yaml.Node], shapes: dict[int, _Shape]) -> tuple[yaml.Node, int]:
    """The anchored node whose copies add the most nodes, and how many times it appears in all."""
    paths = {id(order[-1]): 1}  # how many times each node appears once aliases are expanded
    for node in reversed(order):  # parents before children
        for child in _children(node):
            paths[id(child)] = paths.get(id(child), 0) + paths[id(node)]
    node = max(order, key=lambda n: (paths[id(n)] - 1) * shapes[id(n)].size)
    return node, paths[id(node)]


def parse_documents(text: str, file: str, limits: Limits = DEFAULT_LIMITS) -> list[YamlDoc]:
    """Parse every document of a YAML stream; empty documents are dropped. Deep nesting and alias
    expansion are bounded by `limits` (per file)."""
    loader = _Loader(text)
    docs: list[YamlDoc] = []
    problems: list[Problem] = []
    budget = _Budget(limits)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - empty stream
                continue
            _check_bounds(node, file, budget)
            doc = YamlDoc(value=None, file=file, line=node.start_mark.line + 1)
            builder = _Builder(loader, doc)
            doc.value = builder.build(node, ())
            problems.extend(builder.problems)
            if doc.value is not None:
                docs.append(doc)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise YamlSyntaxError(
            [Problem(f"invalid YAML: {what}", loc, "check indentation and quoting around this line")]
        ) from e
    except yaml.reader.ReaderError as e:  # a character YAML does not allow: no mark, only a position
        line, column = text.count("\n", 0, e.position) + 1, e.position - text.rfind("\n", 0, e.position)
        code = e.character if isinstance(e.character, int) else ord(e.character)
        problem = Problem(f"invalid YAML: character U+{code:04X} is not allowed ({e.reason})",
                          Location(file, line, column), "remove it; YAML files hold printable text")
        raise YamlSyntaxError([problem]) from e
    except yaml.YAMLError as e:
        raise YamlSyntaxError([Problem(f"invalid YAML: {e}", Location(file), "check the file's syntax")]) from e
    finally:
        loader.dispose()
    if problems:
        raise YamlSyntaxError(problems)
    return docs
