"""Merge semantics of the fake API server: server-side apply with field ownership, and the three
patch formats (JSON merge patch, strategic merge patch, JSON patch).

Field ownership is tracked like the real server's `metadata.managedFields` (FieldsV1): a field path
is a tuple of `f:<field>`, `k:<json key>` (an item of an associative list), `v:<json value>` (an
item of a set) and `.` (the list item itself) elements. An applier owns exactly the fields of its
last applied configuration; an updater (PUT/PATCH/POST) owns the fields it changed. Applying a
field another manager owns with a different value is a conflict unless forced; fields an applier
stops applying are removed when no other manager owns them.

Which lists are associative (merged by key) follows the Kubernetes API schemas for the fields
envship's manifests use: containers, initContainers, ephemeralContainers, env, volumes,
imagePullSecrets and resourceClaims by `name`; container ports by `containerPort`+`protocol`;
Service ports by `port`+`protocol`; volumeMounts by `mountPath`; volumeDevices by `devicePath`;
hostAliases by `ip`; topologySpreadConstraints by `topologyKey`+`whenUnsatisfiable`; conditions by
`type`; ownerReferences by `uid`. `finalizers` is a set. Every other list (envFrom, args, command,
tolerations, rules, ...) is atomic: replaced as a whole.
"""

from __future__ import annotations

import json
from typing import Any

from .objects import jcopy

FieldPath = tuple[str, ...]

_MISSING = object()

_NAME_KEYED = frozenset({"containers", "initContainers", "ephemeralContainers", "env", "volumes",
                         "imagePullSecrets", "resourceClaims"})
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_KEY_DEFAULTS = {"protocol": "TCP"}

# Metadata the server owns; never part of a manager's field set.
_SERVER_FIELDS: frozenset[FieldPath] = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:namespace"),
    ("f:metadata", "f:uid"), ("f:metadata", "f:resourceVersion"), ("f:metadata", "f:generation"),
    ("f:metadata", "f:creationTimestamp"), ("f:metadata", "f:managedFields"), ("f:metadata", "f:selfLink"),
    ("f:metadata", "f:deletionTimestamp"), ("f:metadata", "f:deletionGracePeriodSeconds"),
})


class MergeError(ValueError):
    """A structurally invalid patch or applied configuration (the server answers 400/422)."""


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, str, FieldPath]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts  # (manager, apiVersion, path)


# ------------------------------------------------------------------------------------------------
# list types
# ------------------------------------------------------------------------------------------------

def list_type(names: tuple[str, ...]) -> tuple[str, ...] | str:
    """Key fields of the associative list at `names` (field names from the root, list items as
    '[]'), or 'set', or 'atomic'."""
    if not names:
        return "atomic"
    name, parent = names[-1], names[:-1]
    if name in _NAME_KEYED:
        return ("name",)
    if name == "ports":
        if len(parent) >= 2 and parent[-1] == "[]" and parent[-2] in _CONTAINER_LISTS:
            return ("containerPort", "protocol")
        if parent == ("spec",):
            return ("port", "protocol")
        return "atomic"
    keyed = {"volumeMounts": ("mountPath",), "volumeDevices": ("devicePath",), "hostAliases": ("ip",),
             "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"), "conditions": ("type",),
             "ownerReferences": ("uid",)}
    if name in keyed:
        return keyed[name]
    if name == "finalizers":
        return "set"
    return "atomic"


def item_key(keys: tuple[str, ...], item: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    if not isinstance(item, dict):
        raise MergeError(f".{'.'.join(n for n in names if n != '[]')}: expected an object in an associative list")
    values = []
    for k in keys:
        if k in item and item[k] is not None:
            values.append(item[k])
        elif k in _KEY_DEFAULTS:
            values.append(_KEY_DEFAULTS[k])
        else:
            path = ".".join(n for n in names if n != "[]")
            raise MergeError(f".{path}: associative list with keys has an element that omits key field "
                             f"\"{k}\" (and doesn't have default value)")
    return tuple(values)


def _key_token(keys: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return "k:" + json.dumps(dict(zip(keys, values, strict=True)), sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------------------------
# field sets
# ------------------------------------------------------------------------------------------------

def field_set(obj: Any, *, exclude_status: bool = False, only_status: bool = False) -> set[FieldPath]:
    """Leaf field paths of `obj` (plus `.` entries for associative list items)."""
    out: set[FieldPath] = set()
    if not isinstance(obj, dict):
        return out
    _collect(obj, (), (), out)
    out -= _SERVER_FIELDS
    if exclude_status:
        out = {p for p in out if p[0] != "f:status"}
    if only_status:
        out = {p for p in out if p[0] == "f:status"}
    return out


def _collect(node: dict[str, Any], path: FieldPath, names: tuple[str, ...], out: set[FieldPath]) -> None:
    for key, value in node.items():
        if value is None:
            continue
        p, n = path + (f"f:{key}",), names + (key,)
        if isinstance(value, dict) and value:
            _collect(value, p, n, out)
        elif isinstance(value, list) and value:
            kind = list_type(n)
            if kind == "atomic":
                out.add(p)
            elif kind == "set":
                for item in value:
                    out.add(p + ("v:" + json.dumps(item, sort_keys=True, separators=(",", ":")),))
            else:
                assert isinstance(kind, tuple)
                for item in value:
                    kp = p + (_key_token(kind, item_key(kind, item, n)),)
                    out.add(kp + (".",))
                    _collect(item, kp, n + ("[]",), out)
        else:
            out.add(p)


def value_at(obj: Any, path: FieldPath) -> Any:
    node = obj
    for el in path:
        if el == ".":
            return node
        if el.startswith("f:"):
            if not isinstance(node, dict) or el[2:] not in node:
                return _MISSING
            node = node[el[2:]]
        elif el.startswith("k:"):
            want = json.loads(el[2:])
            if not isinstance(node, list):
                return _MISSING
            keys = tuple(sorted(want))
            found = _MISSING
            for item in node:
                if isinstance(item, dict) and all(
                        item.get(k, _KEY_DEFAULTS.get(k)) == want[k] for k in keys):
                    found = item
                    break
            if found is _MISSING:
                return _MISSING
            node = found
        elif el.startswith("v:"):
            want = json.loads(el[2:])
            return want if isinstance(node, list) and want in node else _MISSING
    return node


def remove_at(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove the field (or list item, for paths ending in `.` or `v:`) at `path`, if present."""
    if not path:
        return
    parent_path, last = path[:-1], path[-1]
    if last == ".":
        lst = value_at(obj, parent_path[:-1])
        item = value_at(obj, parent_path)
        if isinstance(lst, list) and item is not _MISSING:
            lst[:] = [x for x in lst if x is not item]
        return
    parent = value_at(obj, parent_path)
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif last.startswith("v:") and isinstance(parent, list):
        want = json.loads(last[2:])
        parent[:] = [x for x in parent if x != want]


def remove_fields(obj: dict[str, Any], paths: set[FieldPath]) -> None:
    """Remove every path: whole list items first, then fields deepest first. Key fields of items
    that stay are kept (an item without its key would be lost)."""
    for p in sorted((p for p in paths if p[-1] == "."), key=len):
        remove_at(obj, p)
    for p in sorted((p for p in paths if p[-1] != "."), key=len, reverse=True):
        if len(p) >= 2 and p[-2].startswith("k:") and p[-1].startswith("f:") and p[-1][2:] in json.loads(p[-2][2:]):
            continue
        remove_at(obj, p)


def fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    """Encode a field set as the API's FieldsV1 trie."""
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for el in path:
            node = node.setdefault(el, {})
    return root


def parse_fields_v1(trie: dict[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for el, sub in trie.items():
        p = prefix + (el,)
        if isinstance(sub, dict) and sub:
            out |= parse_fields_v1(sub, p)
        else:
            out.add(p)
    return out


def render_path(path: FieldPath) -> str:
    """`.spec.template.spec.containers[name="web"].image`, as conflict messages print paths."""
    text = ""
    for el in path:
        if el.startswith("f:"):
            text += "." + el[2:]
        elif el.startswith("k:"):
            key = json.loads(el[2:])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
        elif el.startswith("v:"):
            text += "[=" + el[2:] + "]"
    return text


# ------------------------------------------------------------------------------------------------
# managedFields entries
# ------------------------------------------------------------------------------------------------

def read_managed(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries as dicts with a parsed `set` alongside the API fields."""
    entries = []
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict) or not e.get("manager"):
            continue
        entry = dict(e)
        entry["set"] = parse_fields_v1(e.get("fieldsV1") or {})
        entries.append(entry)
    return entries


def write_managed(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    out = []
    for e in entries:
        if not e["set"]:
            continue
        api = {"manager": e["manager"], "operation": e["operation"], "apiVersion": e["apiVersion"],
               "time": e["time"], "fieldsType": "FieldsV1", "fieldsV1": fields_v1(e["set"])}
        if e.get("subresource"):
            api["subresource"] = e["subresource"]
        out.append(api)
    meta = obj.setdefault("metadata", {})
    if out:
        meta["managedFields"] = out
    else:
        meta.pop("managedFields", None)


def _same_entry(e: dict[str, Any], manager: str, operation: str, subresource: str) -> bool:
    return (e["manager"], e["operation"], e.get("subresource") or "") == (manager, operation, subresource)


# ------------------------------------------------------------------------------------------------
# server-side apply
# ------------------------------------------------------------------------------------------------

def merge_applied(live: Any, applied: Any, names: tuple[str, ...] = ()) -> Any:
    """Deep-merge an applied configuration into the live object (no removals)."""
    if isinstance(applied, dict):
        out = dict(live) if isinstance(live, dict) else {}
        for key, value in applied.items():
            if value is None:
                continue
            out[key] = merge_applied(out.get(key, _MISSING), value, names + (key,))
        return out
    if isinstance(applied, list) and isinstance(live, list):
        kind = list_type(names)
        if kind == "set":
            return jcopy(live) + [jcopy(x) for x in applied if x not in live]
        if isinstance(kind, tuple):
            return _merge_associative(live, applied, kind, names)
    if isinstance(applied, list):
        kind = list_type(names)
        if isinstance(kind, tuple):
            return [merge_applied(_MISSING, x, names + ("[]",)) for x in applied]
    return jcopy(applied)


def _merge_associative(live: list[Any], applied: list[Any], keys: tuple[str, ...],
                       names: tuple[str, ...]) -> list[Any]:
    """Merge two associative lists in structured-merge-diff's order: items only the live list has
    keep their relative place, applied items follow the applied order."""
    lk = [item_key(keys, x, names) for x in live]
    rk = [item_key(keys, x, names) for x in applied]
    lpos = {k: i for i, k in enumerate(lk)}
    rset = set(rk)
    shared = [k for k in rk if k in lpos]
    next_shared = shared.pop(0) if shared else None
    merged_keys: set[tuple[Any, ...]] = set()
    out: list[Any] = []
    li = ri = 0
    item_names = names + ("[]",)
    while li < len(lk) or ri < len(rk):
        if li < len(lk) and ri < len(rk):
            pe = lk[li]
            if pe == rk[ri]:
                merged_keys.add(pe)
                out.append(merge_applied(live[li], applied[ri], item_names))
                li, ri = li + 1, ri + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in rset and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lk):
            pe = lk[li]
            if pe not in rset:
                out.append(jcopy(live[li]))
                li += 1
                continue
            if pe in merged_keys:
                li += 1
                continue
        if ri < len(rk):
            pe = rk[ri]
            merged_keys.add(pe)
            base = live[lpos[pe]] if pe in lpos else _MISSING
            out.append(merge_applied(base, applied[ri], item_names))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def apply(live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, api_version: str, force: bool,
          now: str, subresource: str = "", status_separate: bool = False) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: create). Raises ApplyConflict.

    `status_separate`: the kind has a status subresource, so an apply to the main resource ignores
    status and an apply to `status` touches only status."""
    base = jcopy(live) if live is not None else {}
    entries = read_managed(base)
    applied = jcopy(applied)
    if status_separate:
        if subresource == "status":
            applied = {k: v for k, v in applied.items() if k in ("apiVersion", "kind", "metadata", "status")}
            applied["metadata"] = {k: v for k, v in (applied.get("metadata") or {}).items()
                                   if k in ("name", "namespace")}
        else:
            applied.pop("status", None)
    new_set = field_set(applied)
    mine = next((e for e in entries if _same_entry(e, manager, "Apply", subresource)), None)
    old_set: set[FieldPath] = mine["set"] if mine else set()

    conflicts: list[tuple[str, str, FieldPath]] = []
    for e in entries:
        if e is mine or (e.get("subresource") or "") != subresource:
            continue
        for p in sorted(e["set"] & new_set):
            if p[-1] == ".":
                continue
            new_value = value_at(applied, p)
            if isinstance(new_value, dict):
                continue
            if value_at(base, p) != new_value:
                conflicts.append((e["manager"], e["apiVersion"], p))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    conflicted = {p for _, _, p in conflicts}
    for e in entries:
        if e is not mine:
            e["set"] = e["set"] - conflicted

    merged = merge_applied(base, applied)
    others: set[FieldPath] = set()
    for e in entries:
        if e is not mine:
            others |= e["set"]
    remove_fields(merged, old_set - new_set - others)

    if mine is None:
        mine = {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now, "set": new_set}
        if subresource:
            mine["subresource"] = subresource
        entries.append(mine)
    else:
        changed = new_set != old_set or _strip_managed(merged) != _strip_managed(base)
        mine["set"] = new_set
        mine["apiVersion"] = api_version
        if changed:
            mine["time"] = now
    write_managed(merged, entries)
    return merged


def record_update(old: dict[str, Any] | None, new: dict[str, Any], *, manager: str, api_version: str, now: str,
                  subresource: str = "", status_separate: bool = False) -> None:
    """Give `manager` (operation Update) the fields it changed from `old` to `new`, taking them
    from other managers; forget removed fields. Updates new's managedFields in place."""
    entries = read_managed(old) if old is not None else []
    only_status = status_separate and subresource == "status"
    exclude_status = status_separate and subresource != "status"
    old_fields = field_set(old, exclude_status=exclude_status, only_status=only_status) if old else set()
    new_fields = field_set(new, exclude_status=exclude_status, only_status=only_status)
    changed = set()
    for p in new_fields:
        if p not in old_fields:
            changed.add(p)
        elif p[-1] != "." and value_at(new, p) != value_at(old, p):
            changed.add(p)
    removed = old_fields - new_fields
    for e in entries:
        e["set"] = e["set"] - removed
        if not _same_entry(e, manager, "Update", subresource):
            e["set"] = e["set"] - changed
    if changed:
        mine = next((e for e in entries if _same_entry(e, manager, "Update", subresource)), None)
        if mine is None:
            mine = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": now,
                    "set": set()}
            if subresource:
                mine["subresource"] = subresource
            entries.append(mine)
        mine["set"] = mine["set"] | changed
        mine["time"] = now
        mine["apiVersion"] = api_version
    write_managed(new, entries)


def _strip_managed(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


# ------------------------------------------------------------------------------------------------
# patches
# ------------------------------------------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return jcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any, names: tuple[str, ...] = ()) -> Any:
    """Strategic merge patch for the lists this module knows (see the module docstring): maps merge,
    null deletes, associative lists merge by their first key field (with `$patch: delete|replace`
    items), sets union, other lists are replaced. `$setElementOrder/...`, `$retainKeys` and
    `$deleteFromPrimitiveList/...` directives are honoured."""
    if not isinstance(patch, dict):
        return jcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: jcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return _MISSING
    out = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field_name = key.split("/", 1)[1]
            if isinstance(out.get(field_name), list):
                out[field_name] = [x for x in out[field_name] if x not in (value or [])]
            continue
        n = names + (key,)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _smp_list(out.get(key), value, n)
        else:
            merged = strategic_merge_patch(out.get(key), value, n)
            if merged is _MISSING:
                out.pop(key, None)
            else:
                out[key] = merged
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _smp_list(live: Any, patch: list[Any], names: tuple[str, ...]) -> list[Any]:
    kind = list_type(names)
    if not isinstance(live, list):
        live = []
    if kind == "set":
        return jcopy(live) + [jcopy(x) for x in patch if x not in live]
    if not isinstance(kind, tuple):
        return [x for x in jcopy(patch) if not (isinstance(x, dict) and "$patch" in x)]
    key = kind[0]  # strategic merge patch keys on one field (patchMergeKey)
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [jcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = jcopy(live)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise MergeError(f"map: {item!r} does not contain declared merge key: {key}")
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge_patch({}, item, names + ("[]",)))
        else:
            out[idx] = strategic_merge_patch(out[idx], item, names + ("[]",))
    return out


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise MergeError("json patch must be a list of operations")
    doc = jcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise MergeError(f"invalid json patch operation: {op!r}")
        name = op["op"]
        if name == "test":
            if _pointer_get(doc, op["path"]) != op.get("value"):
                raise MergeError(f"testing value {op['path']} failed")
        elif name == "remove":
            doc = _pointer_remove(doc, op["path"])
        elif name in ("add", "replace"):
            if name == "replace":
                _pointer_get(doc, op["path"])
            doc = _pointer_add(doc, op["path"], jcopy(op.get("value")), replace=name == "replace")
        elif name in ("move", "copy"):
            value = jcopy(_pointer_get(doc, op["from"]))
            if name == "move":
                doc = _pointer_remove(doc, op["from"])
            doc = _pointer_add(doc, op["path"], value, replace=False)
        else:
            raise MergeError(f"unknown json patch operation {name!r}")
    return doc


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise MergeError(f"invalid json pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _pointer_get(doc: Any, pointer: str) -> Any:
    node = doc
    for t in _tokens(pointer):
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list) and t.isdigit() and int(t) < len(node):
            node = node[int(t)]
        else:
            raise MergeError(f"json patch: path {pointer!r} does not exist")
    return node


def _pointer_add(doc: Any, pointer: str, value: Any, *, replace: bool) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _pointer_get(doc, "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])) \
        if len(tokens) > 1 else doc
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            if replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            raise MergeError(f"json patch: invalid index in {pointer!r}")
    else:
        raise MergeError(f"json patch: path {pointer!r} does not exist")
    return doc


def _pointer_remove(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise MergeError("json patch: cannot remove the whole document")
    parent = _pointer_get(doc, "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])) \
        if len(tokens) > 1 else doc
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent.pop(int(last))
    else:
        raise MergeError(f"json patch: path {pointer!r} does not exist")
    return doc
