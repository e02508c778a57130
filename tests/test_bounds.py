"""Bounded parsing: YAML bombs, recursive aliases, deep nesting and oversized files in envship.yaml and in
manifests (a pull request's, for previews) are refused with a location and a hint, exit 2, before they
can tie up a runner; ConfigMap and Secret data over Kubernetes' 1 MiB limit too. How long each refusal
takes is measured by `python bench/bounds.py`, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BASE_CONFIG, DEPLOYMENT, Project

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9))
RECURSIVE_SEQUENCE = "a: &a [*a]\n"
RECURSIVE_MAPPING = "a: &x {b: *x}\n"
DEEP = "k: " + "[" * 300 + "]" * 300 + "\n"
WIDE_TEXT = "a: &a " + "x" * 100_000 + "\nb: [" + ",".join(["*a"] * 60) + "]\n"

CASES = {
    "billion-laughs": (BILLION_LAUGHS, "aliases expand this file too far: the node anchored here is copied",
                       "nested aliases multiply (a YAML bomb)"),
    "recursive-sequence": (RECURSIVE_SEQUENCE, "recursive alias: the node anchored here contains an alias to itself",
                           "an anchor's own content cannot use its alias"),
    "recursive-mapping": (RECURSIVE_MAPPING, "recursive alias: the node anchored here contains an alias to itself",
                          "an anchor's own content cannot use its alias"),
    "deep": (DEEP, "the document is nested 302 levels deep; envship reads at most 200", "flatten the structure"),
    "aliased-text": (WIDE_TEXT, "aliases expand this file too far", "use fewer aliases"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_yaml_in_a_manifest_is_refused(project: Project, case: str) -> None:
    text, message, hint = CASES[case]
    project.config()
    project.manifest("deployment.yaml", DEPLOYMENT)
    project.manifest("bomb.yaml", "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\ndata:\n  " +
                     text.replace("\n", "\n  "))
    result = project.render()
    assert result.code == 2 and result.out == ""
    line, found_hint = result.problem(message)
    assert line.startswith("error: deploy/bomb.yaml:"), line
    assert hint in found_hint
    assert "internal error" not in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("case", CASES)
def test_hostile_yaml_in_the_config_is_refused(project: Project, case: str) -> None:
    text, message, hint = CASES[case]
    project.config(BASE_CONFIG + "x-extra:\n  " + text.replace("\n", "\n  "))
    project.manifest("deployment.yaml", DEPLOYMENT)
    result = project.render()
    assert result.code == 2 and result.out == ""
    line, found_hint = result.problem(message)
    assert line.startswith("error: envship.yaml:"), line
    assert hint in found_hint


def test_where_a_recursive_alias_is_named(project: Project) -> None:
    project.config()
    project.manifest("loop.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &d {a: *d}\n")
    result = project.render()
    assert result.code == 2
    result.problem("deploy/loop.yaml:4:7: recursive alias")


def test_reasonable_anchors_and_merge_keys_still_work(project: Project) -> None:
    project.config()
    project.manifest("cm.yaml", """\
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: shared, labels: &labels {tier: web, team: a}}
            data: {a: "1"}
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: other, labels: {<<: *labels, tier: api}}
            data: &data {b: "2"}
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: third}, data: *data}
        """)
    result = project.render()
    assert result.code == 0, result.err
    assert result.one("ConfigMap", "other")["metadata"]["labels"]["team"] == "a"
    assert result.one("ConfigMap", "other")["metadata"]["labels"]["tier"] == "api"
    assert result.one("ConfigMap", "third")["data"] == {"b": "2"}


def test_deep_but_allowed_nesting_renders(project: Project) -> None:
    """190 levels (a deep custom resource) pass every stage of render, not just the parser."""
    project.config()
    nested = "{x: " * 185 + "1" + "}" * 185
    project.manifest("widget.yaml", f"apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n"
                                    f"spec: {nested}\n")
    result = project.render()
    assert result.code == 0, result.err
    node = result.one("Widget")["spec"]
    depth = 0
    while isinstance(node, dict):
        node, depth = node["x"], depth + 1
    assert depth == 185


def sparse_file(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk (a hole): its size is what a reader sees."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)


def test_an_oversized_manifest_is_refused_without_reading_it(project: Project) -> None:
    project.config()
    project.manifest("deployment.yaml", DEPLOYMENT)
    sparse_file(project.root / "deploy" / "huge.yaml", 17 * 1024 * 1024)
    result = project.render()
    assert result.code == 2
    _, hint = result.problem("deploy/huge.yaml: the manifest is 17.0 MiB; envship reads at most 16.0 MiB")
    assert "split it into smaller files" in hint


def test_oversized_manifests_together_are_refused(project: Project) -> None:
    project.config()
    project.manifest("deployment.yaml", DEPLOYMENT)
    for i in range(5):
        sparse_file(project.root / "deploy" / f"part-{i}.yaml", 15 * 1024 * 1024)
    result = project.render()
    assert result.code == 2
    result.problem("envship.yaml:3:12: the manifests in 'deploy' hold 75.0 MiB in 6 files; envship reads at most 64.0")


def test_an_oversized_config_is_refused(project: Project) -> None:
    project.manifest("deployment.yaml", DEPLOYMENT)
    with (project.root / "envship.yaml").open("w") as handle:
        handle.write(BASE_CONFIG + "# " + "x" * (1024 * 1024) + "\n")
    result = project.render()
    assert result.code == 2
    result.problem("envship.yaml: the config file is 1.0 MiB; envship reads at most 1.0 MiB")


def test_configmap_data_over_the_kubernetes_limit_is_refused(project: Project) -> None:
    project.config()
    project.manifest("deployment.yaml", DEPLOYMENT)
    big = "x" * (1024 * 1024)
    project.manifest("big.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  blob: {big}\n")
    result = project.render()
    assert result.code == 2
    _, hint = result.problem("deploy/big.yaml:1:1: ConfigMap/big holds 1,048,580 bytes of data; Kubernetes stores "
                             "at most 1,048,576 bytes in a ConfigMap")
    assert "mount large files" in hint


def test_secret_values_over_the_limit_are_refused_without_showing_them(project: Project) -> None:
    project.config()
    project.manifest("deployment.yaml", DEPLOYMENT)
    value = "s3cr3t-" * (160 * 1024)   # 1.1 MiB
    result = project.render("--secret", f"BLOB={value}")
    assert result.code == 2
    _, hint = result.problem("holds 1,146,884 bytes of data; Kubernetes stores at most 1,048,576 bytes in a Secret")
    assert "--secret values" in hint and "s3cr3t-" not in result.err


def test_env_values_over_the_limit_are_refused(project: Project) -> None:
    project.config()
    project.manifest("deployment.yaml", DEPLOYMENT)
    result = project.render("--set", "BLOB=" + "v" * (1024 * 1024))
    assert result.code == 2
    _, hint = result.problem("bytes in a ConfigMap")
    assert "the environment's variables" in hint
