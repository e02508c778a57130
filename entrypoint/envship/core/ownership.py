"""Ownership (pure): what a deploy may change and prune, decided by ApplySets (KEP-3659).

Each deploy target (app, environment, namespace; so each preview too) is one ApplySet, as
`kubectl apply --prune --applyset` defines it: a parent object (a Secret `envship.<app>.<env>` in the
target namespace) labelled `applyset.kubernetes.io/id: applyset-<base64url(sha256(name.namespace.Secret.))>-v1`,
annotated with the tooling and the group-kinds of its members, and every member labelled
`applyset.kubernetes.io/part-of: <id>`. envship changes and prunes members of its own applyset only; the
human labels (managed-by, instance, environment) are for people and selectors, never for decisions.

Deploys made before ApplySets (their last release record names no applyset) migrate on their next deploy:
what that record lists, still carrying the old labels, counts as the applyset's, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem
from . import health, kinds

PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET_ID = "applyset.kubernetes.io/id"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
ADDITIONAL_NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
REPOSITORY = "envship.dev/repository"
PARENT_TYPE = "envship.dev/applyset"
FIELD_MANAGER = "envship"
# the labels envship stamped before ApplySets (they stay, for people and selectors)
MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"
ENVIRONMENT = "envship.dev/environment"
PR_LABEL = "envship.dev/pr"

Key = tuple[str, str, str, str]  # (group, kind, namespace, name)


def key_of(obj: Mapping[str, Any]) -> Key:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return (group, str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))


def describe(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("labels") or {}


def applyset_id(name: str, namespace: str, kind: str = "Secret", group: str = "") -> str:
    """The parent's id, exactly as kubectl computes it (ApplySet.ID in kubectl's apply/applyset.go)."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


def parent_name(app: str, environment: str) -> str:
    return f"envship.{app}.{environment}"


def group_kind(obj: Mapping[str, Any]) -> str:
    """`Kind.group` (`Deployment.apps`; `Service` for the core group), as GroupKind.String() prints it."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", ""))
    return f"{kind}.{group}" if group else kind


def parse_group_kinds(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def parent_group_kinds(parent: Mapping[str, Any] | None) -> set[str]:
    """The group-kinds a live parent lists: where its members may be."""
    annotations = ((parent or {}).get("metadata") or {}).get("annotations") or {}
    return parse_group_kinds(str(annotations.get(GROUP_KINDS, "")))


@dataclass(frozen=True)
class ApplySet:
    """One deploy target's set of objects."""

    app: str
    environment: str
    namespace: str
    pr: int | None = None

    @property
    def name(self) -> str:
        return parent_name(self.app, self.environment)

    @property
    def id(self) -> str:
        return applyset_id(self.name, self.namespace)

    def owns(self, obj: Mapping[str, Any]) -> bool:
        return labels_of(obj).get(PART_OF) == self.id

    def human_labels(self) -> dict[str, str]:
        labels = {MANAGED_BY: "envship", INSTANCE: self.app, ENVIRONMENT: self.environment}
        if self.pr is not None:
            labels[PR_LABEL] = str(self.pr)
        return labels

    def had_old_labels(self, obj: Mapping[str, Any]) -> bool:
        """Labelled for this target by an envship version before ApplySets."""
        labels = labels_of(obj)
        return all(labels.get(k) == v for k, v in self.human_labels().items())

    def parent(self, group_kinds: Iterable[str], tooling: str, repository: str) -> dict[str, Any]:
        annotations = {TOOLING: tooling, GROUP_KINDS: ",".join(sorted(set(group_kinds))),
                       # kubectl writes it even when empty; every member lives in the parent's namespace
                       # or is cluster-scoped (render refuses objects naming another namespace)
                       ADDITIONAL_NAMESPACES: ""}
        if repository:
            annotations[REPOSITORY] = repository
        return {"apiVersion": "v1", "kind": "Secret", "type": PARENT_TYPE,
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": {APPLYSET_ID: self.id, **self.human_labels()},
                             "annotations": annotations}}

    def parent_problem(self, live: Mapping[str, Any] | None, repository: str, adopt: bool) -> Problem | None:
        """Why the live parent is not this target's (a foreign Secret of that name, another tool's
        applyset, another repository's deploy), or None."""
        if live is None:
            return None
        where = f"Secret/{self.name} in namespace {self.namespace}"
        labels = labels_of(live)
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        tool = str(annotations.get(TOOLING, "")).partition("/")[0]
        if labels.get(APPLYSET_ID) != self.id or tool != "envship":
            owner = f"is the ApplySet of '{tool}'" if tool and tool != "envship" else "is not envship's ApplySet parent"
            return Problem(f"{where} {owner}; envship keeps this deploy's inventory there",
                           hint="rename or delete that Secret, or deploy this app under another name or namespace")
        recorded = str(annotations.get(REPOSITORY, ""))
        if recorded and repository and recorded != repository and not adopt:
            return Problem(
                f"app '{self.app}' environment '{self.environment}' in namespace {self.namespace} is deployed from "
                f"the repository {recorded}, not {repository}",
                hint="two repositories must not deploy the same app and environment into one namespace: change "
                     f"'app' or the namespace; if the repository was renamed or moved, set 'adopt: true' on "
                     f"environment '{self.environment}' once")
        return None


def namespace_created_by_envship(namespace: Mapping[str, Any]) -> bool:
    """A namespace an earlier envship version created: envship's apply is its only field manager. One that
    existed before and that the earlier version only labelled also has its creator's entry."""
    managers = {str(m.get("manager", "")) for m in (namespace.get("metadata") or {}).get("managedFields") or []}
    return managers == {FIELD_MANAGER}


@dataclass(frozen=True)
class Inventory:
    """What this target owns, as far as the cluster says."""

    applyset: ApplySet
    legacy_keys: frozenset[Key] = frozenset()  # listed by a release record written before ApplySets

    def owns(self, obj: Mapping[str, Any]) -> bool:
        if self.applyset.owns(obj):
            return True
        if key_of(obj) not in self.legacy_keys or not self.applyset.had_old_labels(obj):
            return False
        # the old version also labelled namespaces it found: only one it created counts as its own
        return obj.get("kind") != "Namespace" or namespace_created_by_envship(obj)

    def owner_of(self, obj: Mapping[str, Any]) -> str:
        """Who a live object that is not ours belongs to, in words."""
        labels = labels_of(obj)
        if PART_OF in labels:
            if labels.get(MANAGED_BY) == "envship":
                return (f"another envship deploy (app '{labels.get(INSTANCE)}', environment "
                        f"'{labels.get(ENVIRONMENT)}', applyset {labels[PART_OF]})")
            return f"the ApplySet {labels[PART_OF]}"
        if labels.get(MANAGED_BY) == "envship":
            return (f"envship app '{labels.get(INSTANCE)}' environment '{labels.get(ENVIRONMENT)}' (labelled by an "
                    "earlier envship version, but no release record of this deploy lists it)")
        managed_by = labels.get(MANAGED_BY)
        return f"'{managed_by}'" if managed_by else "someone else"


@dataclass
class Decision:
    """What a deploy of `objects` does to the cluster."""

    apply: list[Any] = field(default_factory=list)            # RenderedObjects to apply
    prune: list[Mapping[str, Any]] = field(default_factory=list)  # live members no longer rendered
    foreign: list[Problem] = field(default_factory=list)       # rendered objects that belong to others
    adopted: list[str] = field(default_factory=list)           # foreign objects taken over (adopt: true)
    notes: list[str] = field(default_factory=list)
    members: list[Mapping[str, Any]] = field(default_factory=list)  # live members before the deploy
    namespace_kept: bool = False  # the target namespace is used as it is (not ours)


def decide(inventory: Inventory, objects: Sequence[Any], live: Mapping[Key, Mapping[str, Any]],
           adopt: bool) -> Decision:
    """Sort `objects` (RenderedObjects) against the live state. Pure: the cluster is not asked."""
    applyset = inventory.applyset
    decision = Decision()
    wanted = {key_of(o.obj) for o in objects}
    for obj in objects:
        current = live.get(key_of(obj.obj))
        if current is None or inventory.owns(current):
            decision.apply.append(obj)
            continue
        is_target_namespace = obj.kind == "Namespace" and obj.name == applyset.namespace
        if is_target_namespace and obj.source is None and not adopt:
            # create-namespace found it already there: use it, never label or delete it
            decision.namespace_kept = True
            decision.notes.append(f"namespace {obj.name} exists and envship did not create it: it is used as it is "
                                  "(never labelled, never deleted); 'adopt: true' lets envship own it")
            continue
        other_deploy = PART_OF in labels_of(current)
        if adopt and not other_deploy:
            decision.apply.append(obj)
            decision.adopted.append(obj.describe())
            continue
        where = f" in namespace {obj.namespace}" if obj.namespace else ""
        hint = ("envship never takes an object from another ApplySet (another envship deploy, or kubectl's "
                "--applyset), not even with 'adopt: true': rename yours" if other_deploy else
                "envship never takes over objects it did not create: rename yours, delete the old one, or set "
                f"'adopt: true' on environment '{applyset.environment}' to take it over deliberately")
        decision.foreign.append(Problem(
            f"{obj.describe()}{where} already exists and belongs to {inventory.owner_of(current)}, not to this deploy",
            obj.source, hint))
    decision.members = sorted((o for o in live.values() if inventory.owns(o)), key=key_of)
    candidates = [o for o in decision.members if key_of(o) not in wanted]
    for obj in candidates:
        if obj.get("kind") == "Namespace" and (obj.get("metadata") or {}).get("name") == applyset.namespace:
            decision.notes.append(f"namespace {applyset.namespace} is no longer rendered but holds this deploy: "
                                  "it is kept (tearing the environment down removes it)")
            continue
        decision.prune.append(obj)
    decision.prune.sort(key=lambda o: (-kinds.tier(str(o.get("kind"))), key_of(o)))  # dependents first
    return decision


def is_env_object(obj: Mapping[str, Any], app: str) -> bool:
    """The hashed ConfigMap/Secret envship generates for the environment's values: a new one replaces the
    old whenever a value changes, so pruning the old one is routine."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    prefix = {"ConfigMap": f"{app}-env-", "Secret": f"{app}-secrets-"}.get(str(obj.get("kind")))
    return prefix is not None and name.startswith(prefix) and len(name) == len(prefix) + 10


def sweeping_prune(decision: Decision, app: str, namespace: str) -> Problem | None:
    """A prune that removes most of the app: more than half of its live objects, every live workload, or a
    whole Namespace (with whatever others put in it). Usually an emptied or wrong manifests path. The
    problem's message says what it would delete; callers say what they do about it."""
    def counted(obj: Mapping[str, Any]) -> bool:
        is_target_namespace = obj.get("kind") == "Namespace" and (obj.get("metadata") or {}).get("name") == namespace
        return not is_env_object(obj, app) and not is_target_namespace

    members = [o for o in decision.members if counted(o)]
    pruned = [o for o in decision.prune if counted(o)]
    if not pruned:
        return None
    workloads = [o for o in members if o.get("kind") in health.WORKLOAD_KINDS or o.get("kind") == "CronJob"]
    namespaces = [describe(o) for o in pruned if o.get("kind") == "Namespace"]
    if namespaces:
        why = f"it would delete {', '.join(namespaces)} and everything in it, including objects envship did not create"
    elif workloads and all(o in pruned for o in workloads):
        why = f"it would delete every workload of the app ({', '.join(describe(o) for o in workloads)})"
    elif 2 * len(pruned) > len(members):
        why = f"it would delete {len(pruned)} of the app's {len(members)} objects"
    else:
        return None
    shown = ", ".join(describe(o) for o in pruned[:8]) + (f" and {len(pruned) - 8} more" if len(pruned) > 8 else "")
    return Problem(f"{why} ({shown})",
                   hint="if the manifests path or the manifests are wrong, fix them; if removing these is meant, "
                        "deploy with {--allow-mass-prune}")
