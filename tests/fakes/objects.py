"""Object rules of the fake API server: defaulting, validation (the 422 Invalid causes the real
server gives for the cases envship can run into), normalisation, and label/field selectors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from .resources import ResourceType

# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(n))


def safe_hash(text: str, n: int = 10) -> str:
    """A pod-template-hash-like string: digits and consonants only."""
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    out = []
    for _ in range(n):
        digest, r = divmod(digest, len(_SUFFIX_ALPHABET))
        out.append(_SUFFIX_ALPHABET[r])
    return "".join(out)


def now_iso(ts: float | None = None) -> str:
    dt = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def jcopy(obj: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, scalars): much faster than copy.deepcopy."""
    if isinstance(obj, dict):
        return {k: jcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [jcopy(v) for v in obj]
    return obj


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------------------------
# validation causes
# ------------------------------------------------------------------------------------------------

class Cause:
    """One field error, formatted like k8s.io/apimachinery's field.Error."""

    REASONS: ClassVar[dict[str, str]] = {
        "Required": "FieldValueRequired", "Invalid": "FieldValueInvalid", "Forbidden": "FieldValueForbidden",
        "Duplicate": "FieldValueDuplicate", "NotSupported": "FieldValueNotSupported"}

    def __init__(self, kind: str, field: str, detail: str = "", value: Any = None) -> None:
        self.kind, self.field, self.detail, self.value = kind, field, detail, value

    @property
    def message(self) -> str:
        if self.kind == "Required":
            text = "Required value"
        elif self.kind == "Forbidden":
            text = "Forbidden"
        elif self.kind == "Duplicate":
            return f"Duplicate value: {go_value(self.value)}"
        elif self.kind == "NotSupported":
            text = f"Unsupported value: {go_value(self.value)}"
        else:
            text = f"Invalid value: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def api(self) -> dict[str, str]:
        return {"reason": self.REASONS[self.kind], "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def go_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
        return f"map[string]string{{{inner}}}"
    if isinstance(value, dict | list):
        return canonical(value)
    return str(value)


class InvalidObject(Exception):
    def __init__(self, causes: list[Cause]) -> None:
        super().__init__("; ".join(str(c) for c in causes))
        self.causes = causes


# ------------------------------------------------------------------------------------------------
# names and labels
# ------------------------------------------------------------------------------------------------

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + r")*"
_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"

_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is '" + _DNS1123_SUBDOMAIN.replace("\\", "\\\\") + "')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '" + _DNS1123_LABEL + "')")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '" + _DNS1035_LABEL + "')")

# How each kind's metadata.name is validated.
_LABEL_NAMED = frozenset({"Namespace"})
_DNS1035_NAMED = frozenset({"Service"})
_PATH_SEGMENT_NAMED = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


def name_problems(kind: str, name: str) -> list[str]:
    if kind in _PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return ["may not contain '/' or '%' or be '.' or '..'"]
        return []
    if kind in _DNS1035_NAMED:
        if len(name) > 63:
            return ["must be no more than 63 characters"]
        return [] if re.fullmatch(_DNS1035_LABEL, name) else [_DNS1035_MSG]
    if kind in _LABEL_NAMED:
        if len(name) > 63:
            return ["must be no more than 63 characters"]
        return [] if re.fullmatch(_DNS1123_LABEL, name) else [_LABEL_MSG]
    if len(name) > 253:
        return ["must be no more than 253 characters"]
    return [] if re.fullmatch(_DNS1123_SUBDOMAIN, name) else [_SUBDOMAIN_MSG]


def _label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.fullmatch(_DNS1123_SUBDOMAIN, prefix)):
        return "prefix part " + _SUBDOMAIN_MSG
    if not name or len(name) > 63 or not re.fullmatch(_QUALIFIED_NAME, name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    return None


def _label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not re.fullmatch(_LABEL_VALUE, value):
        return ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    return None


def _check_labels(labels: Any, field: str, causes: list[Cause]) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        causes.append(Cause("Invalid", field, "must be a map of strings", labels))
        return
    for key, value in labels.items():
        problem = _label_key_problem(str(key))
        if problem:
            causes.append(Cause("Invalid", field, problem, key))
        problem = _label_value_problem(value)
        if problem:
            causes.append(Cause("Invalid", f"{field}", problem, value))


# ------------------------------------------------------------------------------------------------
# label selectors
# ------------------------------------------------------------------------------------------------

class SelectorError(ValueError):
    pass


def parse_label_selector(text: str | None) -> Callable[[dict[str, str]], bool]:
    """`a=b,c!=d,e in (x,y),f notin (z),!g,h` as a predicate on a label map."""
    if not text:
        return lambda labels: True
    reqs: list[Callable[[dict[str, str]], bool]] = []
    for raw in _split_selector(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {text!r}")
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", part)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                reqs.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*([^=!\s]*)", part)
        if m:
            key, op, value = m.groups()
            _check_selector_key(key, text)
            if op == "!=":
                reqs.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                reqs.append(lambda lb, k=key, v=value: lb.get(k) == v)
            continue
        m = re.fullmatch(r"!\s*(\S+)", part)
        if m:
            key = m.group(1)
            _check_selector_key(key, text)
            reqs.append(lambda lb, k=key: k not in lb)
            continue
        if re.fullmatch(r"[^\s=!(),]+", part):
            _check_selector_key(part, text)
            reqs.append(lambda lb, k=part: k in lb)
            continue
        raise SelectorError(f"unable to parse requirement: {part!r}")
    return lambda labels: all(r(labels) for r in reqs)


def _check_selector_key(key: str, text: str) -> None:
    problem = _label_key_problem(key)
    if problem:
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}: {problem}")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector (matchLabels + matchExpressions) against labels. An empty selector
    matches everything, a missing one nothing."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# field selectors: which fields each kind supports (metadata.name and metadata.namespace for all)
_FIELD_SELECTABLE = {
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "status.phase", "status.podIP"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Job": ("status.successful",),
}


def parse_field_selector(text: str | None, kind: str) -> Callable[[dict[str, Any]], bool]:
    if not text:
        return lambda obj: True
    allowed = ("metadata.name", "metadata.namespace") + _FIELD_SELECTABLE.get(kind, ())
    reqs = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.groups()
        if field not in allowed:
            raise SelectorError(f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        reqs.append((field, op == "!=", value))

    def pred(obj: dict[str, Any]) -> bool:
        for field, negate, value in reqs:
            node: Any = obj
            for part in field.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if field == "source" and isinstance(node, dict):
                node = node.get("component")
            actual = "" if node is None else str(node)
            if (actual == value) == negate:
                return False
        return True

    return pred


# ------------------------------------------------------------------------------------------------
# normalisation: what a round trip through the Go types does to JSON
# ------------------------------------------------------------------------------------------------

# Map-typed fields whose empty value the Go types drop (omitempty on a map).
_OMIT_EMPTY_MAPS = frozenset({"labels", "annotations", "data", "binaryData", "stringData", "matchLabels",
                              "nodeSelector", "limits", "requests"})
_KEEP_EMPTY_LISTS = frozenset({"items", "subjects", "rules"})


def normalize(node: Any, key: str = "") -> Any:
    """Drop null values, empty lists and empty map-typed fields, as serialising through the API's Go
    types does, so that no-op detection and diffs see what a real server would store."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if v is None:
                continue
            nv = normalize(v, k)
            if isinstance(nv, list) and not nv and k not in _KEEP_EMPTY_LISTS:
                continue
            if isinstance(nv, dict) and not nv and k in _OMIT_EMPTY_MAPS:
                continue
            out[k] = nv
        return out
    if isinstance(node, list):
        return [normalize(x, key) for x in node]
    return node


# ------------------------------------------------------------------------------------------------
# defaulting
# ------------------------------------------------------------------------------------------------

def default_object(rt: ResourceType, obj: dict[str, Any]) -> None:
    kind = rt.kind
    spec = obj.get("spec")
    if kind == "Namespace":
        meta(obj).setdefault("labels", {})["kubernetes.io/metadata.name"] = meta(obj).get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Pod" and isinstance(spec, dict):
        default_pod_spec(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        obj["status"].setdefault("qosClass", "BestEffort")
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        obj.setdefault("status", {}).setdefault("loadBalancer", {})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxSurge", "25%")
            ru.setdefault("maxUnavailable", "25%")
        _default_template(spec)
    elif kind == "StatefulSet" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        _default_template(spec)
    elif kind == "DaemonSet" and isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
        _default_template(spec)
    elif kind == "ReplicaSet" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        _default_template(spec)
    elif kind == "Job" and isinstance(spec, dict):
        default_job_spec(spec, meta(obj))
    elif kind == "CronJob" and isinstance(spec, dict):
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        if isinstance(job_spec, dict):
            job_spec.setdefault("backoffLimit", 6)
            job_spec.setdefault("completionMode", "NonIndexed")
            job_spec.setdefault("suspend", False)
            _default_template(job_spec)
    elif kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")


def default_job_spec(spec: dict[str, Any], metadata: dict[str, Any]) -> None:
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    uid = metadata.get("uid")
    if uid and not spec.get("manualSelector"):
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", metadata.get("name", ""))
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", metadata.get("name", ""))
    _default_template(spec)


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", _pull_policy(str(c.get("image", ""))))
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _pull_policy(image: str) -> str:
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------

_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


def validate(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes: list[Cause] = []
    m = meta(obj)
    name = m.get("name")
    if not name:
        causes.append(Cause("Required", "metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        causes.append(Cause("Invalid", "metadata.name", "must be a string", name))
    else:
        for problem in name_problems(rt.kind, name):
            causes.append(Cause("Invalid", "metadata.name", problem, name))
    _check_labels(m.get("labels"), "metadata.labels", causes)
    annotations = m.get("annotations")
    if annotations is not None and (not isinstance(annotations, dict)
                                    or not all(isinstance(v, str) for v in annotations.values())):
        causes.append(Cause("Invalid", "metadata.annotations", "annotation values must be strings", annotations))
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    kind = rt.kind

    if kind in _WORKLOADS or kind == "Job":
        if spec is None:
            causes.append(Cause("Required", "spec"))
        else:
            _validate_workload(kind, spec, old, causes)
    elif kind == "Pod":
        if spec is None:
            causes.append(Cause("Required", "spec"))
        else:
            _validate_pod_spec(spec, "spec", causes)
    elif kind == "CronJob" and spec is not None:
        if not spec.get("schedule"):
            causes.append(Cause("Required", "spec.schedule"))
        job_spec = (spec.get("jobTemplate") or {}).get("spec")
        pod_spec = ((job_spec or {}).get("template") or {}).get("spec")
        if not isinstance(pod_spec, dict):
            causes.append(Cause("Required", "spec.jobTemplate.spec.template.spec"))
        else:
            _validate_pod_spec(pod_spec, "spec.jobTemplate.spec.template.spec", causes)
            _validate_job_restart(pod_spec, "spec.jobTemplate.spec.template.spec", causes)
    elif kind == "Service":
        _validate_service(spec or {}, old, causes)
    elif kind in ("ConfigMap", "Secret"):
        _validate_config(kind, obj, old, causes)
    elif kind == "PersistentVolumeClaim" and old is not None:
        old_spec = dict(old.get("spec") or {})
        new_spec = dict(spec or {})
        for s in (old_spec, new_spec):
            s.pop("resources", None)
            s.pop("volumeName", None)
            s.pop("volumeAttributesClassName", None)
        if old_spec != new_spec:
            causes.append(Cause("Forbidden", "spec", "spec is immutable after creation except resources.requests "
                                                     "and volumeAttributesClassName for bound claims"))
    return causes


def _validate_workload(kind: str, spec: dict[str, Any], old: dict[str, Any] | None, causes: list[Cause]) -> None:
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(Cause("Invalid", "spec.replicas", "must be greater than or equal to 0", replicas))
    template = spec.get("template")
    selector = spec.get("selector")
    if kind != "Job":
        if not isinstance(selector, dict):
            causes.append(Cause("Required", "spec.selector"))
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(Cause("Invalid", "spec.selector", "empty selector is invalid for deployment",
                                selector))
    if not isinstance(template, dict):
        causes.append(Cause("Required", "spec.template"))
        return
    tlabels = (template.get("metadata") or {}).get("labels") or {}
    _check_labels(tlabels, "spec.template.metadata.labels", causes)
    if isinstance(selector, dict) and (selector.get("matchLabels") or selector.get("matchExpressions")):
        if not selector_matches(selector, tlabels):
            causes.append(Cause("Invalid", "spec.template.metadata.labels",
                                "`selector` does not match template `labels`", tlabels))
    pod_spec = template.get("spec")
    if not isinstance(pod_spec, dict):
        causes.append(Cause("Required", "spec.template.spec"))
    else:
        _validate_pod_spec(pod_spec, "spec.template.spec", causes)
        if kind == "Job":
            _validate_job_restart(pod_spec, "spec.template.spec", causes)
        elif pod_spec.get("restartPolicy", "Always") != "Always":
            causes.append(Cause("NotSupported", "spec.template.spec.restartPolicy", 'supported values: "Always"',
                                pod_spec.get("restartPolicy")))
    if old is None:
        return
    old_spec = old.get("spec") or {}
    if kind in _WORKLOADS and old_spec.get("selector") != selector:
        causes.append(Cause("Invalid", "spec.selector", "field is immutable", selector))
    if kind == "Job":
        if old_spec.get("selector") != spec.get("selector"):
            causes.append(Cause("Invalid", "spec.selector", "field is immutable", spec.get("selector")))
        if old_spec.get("template") != template:
            causes.append(Cause("Invalid", "spec.template", "field is immutable", template))
        if old_spec.get("completions") != spec.get("completions"):
            causes.append(Cause("Invalid", "spec.completions", "field is immutable", spec.get("completions")))
    if kind == "StatefulSet":
        mutable = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                   "minReadySeconds"}
        if {k: v for k, v in old_spec.items() if k not in mutable} != \
                {k: v for k, v in spec.items() if k not in mutable}:
            causes.append(Cause("Forbidden", "spec", "updates to statefulset spec for fields other than 'replicas', "
                                "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
                                "and 'minReadySeconds' are forbidden"))


def _validate_job_restart(pod_spec: dict[str, Any], field: str, causes: list[Cause]) -> None:
    if pod_spec.get("restartPolicy") not in ("OnFailure", "Never"):
        if pod_spec.get("restartPolicy") in (None, "Always"):
            causes.append(Cause("Required", f"{field}.restartPolicy", 'valid values: "OnFailure", "Never"'))
        else:
            causes.append(Cause("NotSupported", f"{field}.restartPolicy", 'supported values: "OnFailure", "Never"',
                                pod_spec.get("restartPolicy")))


def _validate_pod_spec(spec: dict[str, Any], field: str, causes: list[Cause]) -> None:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(Cause("Required", f"{field}.containers"))
        containers = []
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            where = f"{field}.{key}[{i}]"
            if not isinstance(c, dict):
                causes.append(Cause("Invalid", where, "must be an object", c))
                continue
            cname = c.get("name")
            if not cname:
                causes.append(Cause("Required", f"{where}.name"))
            elif not isinstance(cname, str) or not re.fullmatch(_DNS1123_LABEL, cname) or len(cname) > 63:
                causes.append(Cause("Invalid", f"{where}.name", _LABEL_MSG, cname))
            elif cname in seen:
                causes.append(Cause("Duplicate", f"{where}.name", value=cname))
            else:
                seen.add(cname)
            if not c.get("image"):
                causes.append(Cause("Required", f"{where}.image"))
            for j, env in enumerate(c.get("env") or []):
                if not isinstance(env, dict) or not env.get("name"):
                    causes.append(Cause("Required", f"{where}.env[{j}].name"))
                elif "value" in env and env["value"] is not None and not isinstance(env["value"], str):
                    causes.append(Cause("Invalid", f"{where}.env[{j}].value", "must be a string", env["value"]))
            for j, port in enumerate(c.get("ports") or []):
                cp = port.get("containerPort") if isinstance(port, dict) else None
                if not isinstance(cp, int) or not 0 < cp < 65536:
                    causes.append(Cause("Invalid", f"{where}.ports[{j}].containerPort",
                                        "must be between 1 and 65535, inclusive", cp))


def _validate_service(spec: dict[str, Any], old: dict[str, Any] | None, causes: list[Cause]) -> None:
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(Cause("NotSupported", "spec.type",
                            'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"', stype))
    ports = spec.get("ports") or []
    if stype != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        causes.append(Cause("Required", "spec.ports"))
    names = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            causes.append(Cause("Invalid", f"spec.ports[{i}]", "must be an object", port))
            continue
        p = port.get("port")
        if not isinstance(p, int) or not 0 < p < 65536:
            causes.append(Cause("Invalid", f"spec.ports[{i}].port", "must be between 1 and 65535, inclusive", p))
        if len(ports) > 1 and not port.get("name"):
            causes.append(Cause("Required", f"spec.ports[{i}].name"))
        if port.get("name") in names:
            causes.append(Cause("Duplicate", f"spec.ports[{i}].name", value=port.get("name")))
        names.add(port.get("name"))
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") not in (None, "", old_ip) and stype != "ExternalName":
            causes.append(Cause("Invalid", "spec.clusterIPs[0]", "may not change once set", spec.get("clusterIP")))


def _validate_config(kind: str, obj: dict[str, Any], old: dict[str, Any] | None, causes: list[Cause]) -> None:
    for key in ("data", "binaryData"):
        data = obj.get(key)
        if data is None:
            continue
        if not isinstance(data, dict):
            causes.append(Cause("Invalid", key, "must be a map", data))
            continue
        for k, v in data.items():
            if not re.fullmatch(r"[-._a-zA-Z0-9]+", str(k)):
                causes.append(Cause("Invalid", f"{key}[{k}]", "a valid config key must consist of alphanumeric "
                                    "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                    "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')", k))
            if kind == "ConfigMap" and key == "data" and not isinstance(v, str):
                causes.append(Cause("Invalid", f"{key}[{k}]", "must be a string", v))
            if kind == "Secret" or key == "binaryData":
                try:
                    base64.b64decode(str(v), validate=True)
                except (binascii.Error, ValueError):
                    causes.append(Cause("Invalid", f"{key}[{k}]", "illegal base64 data", v))
    if old is not None and kind == "Secret" and obj.get("type") != old.get("type"):
        causes.append(Cause("Invalid", "type", "field is immutable", obj.get("type")))
    if old is None or not old.get("immutable"):
        return
    if not obj.get("immutable"):
        causes.append(Cause("Forbidden", "immutable", "field is immutable when `immutable` is set"))
    for key in ("data", "binaryData"):
        if (obj.get(key) or {}) != (old.get(key) or {}):
            causes.append(Cause("Forbidden", key, "field is immutable when `immutable` is set"))
