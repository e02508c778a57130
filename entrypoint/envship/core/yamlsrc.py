"""YAML documents with source positions.

PyYAML's composer keeps a start mark on every node; we build plain Python values from the nodes and
remember, per path inside the document, where each key and value stood, so that any later error
(config validation, render) can name the file, line and column. libyaml is used when present: it is
what keeps rendering thousands of objects well under a second.
"""

from __future__ import annotations

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


def parse_documents(text: str, file: str) -> list[YamlDoc]:
    """Parse every document of a YAML stream; empty documents are dropped."""
    loader = _Loader(text)
    docs: list[YamlDoc] = []
    problems: list[Problem] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - empty stream
                continue
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
