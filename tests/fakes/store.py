"""The fake API server's in-memory store: objects, resourceVersions, the event history watches
replay from, and the create/get/list/replace/patch/apply/delete operations with the real server's
status codes and Status bodies. HTTP-free: kube_apiserver.py parses requests and calls into it, the
controller writes through its internal methods."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from . import ssa
from .objects import (
    Cause,
    SelectorError,
    default_object,
    jcopy,
    meta,
    normalize,
    now_iso,
    parse_field_selector,
    parse_label_selector,
    random_suffix,
    validate,
)
from .resources import Registry, ResourceType

Key = tuple[str, str]  # (namespace or "", name)

CONTROLLER_MANAGER = "kube-controller-manager"
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
TERMINATING_MESSAGE = ("The system is ensuring all content is removed from this namespace.  Upon completion, "
                       "this namespace will automatically be purged by the system.")


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------

class ApiError(Exception):
    """An API error: answered as a Status object with `code`."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details or {}
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason}
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    d.update(extra)
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def namespace_not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
                    _details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    text = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.kind
    details["causes"] = [c.api() for c in causes]
    return ApiError(422, "Invalid", f'{rt.group_kind} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


STALE = "the object has been modified; please apply your changes to the latest version and try again"


# ------------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------------

@dataclass
class WatchEvent:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    storage: tuple[str, str]
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Store:
    def __init__(self, registry: Registry, *, history_size: int = 1000) -> None:
        self.registry = registry
        self.cond = threading.Condition(threading.RLock())
        self._objects: dict[tuple[str, str], dict[Key, dict[str, Any]]] = {}
        self._by_uid: dict[str, tuple[tuple[str, str], Key]] = {}
        self._dependents: dict[str, set[tuple[tuple[str, str], Key]]] = {}  # owner uid -> dependents
        self.rv = 100
        self.history: deque[WatchEvent] = deque(maxlen=history_size)
        self.floor = self.rv  # events at or below this resourceVersion are no longer in the history
        self._next_ip = 1
        self._next_node_port = 30000
        self.stopping = False
        self.on_crd_change: list[Callable[[], None]] = []

    # -- reading -----------------------------------------------------------------------------------

    def lookup(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (callers hold the lock and must not mutate it)."""
        return self._objects.get(rt.storage_key, {}).get((ns if rt.namespaced else "", name))

    def items(self, storage: tuple[str, str], ns: str | None = None) -> list[dict[str, Any]]:
        objs = self._objects.get(storage, {})
        return [o for (ons, _), o in sorted(objs.items()) if ns is None or ons == ns]

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        where = self._by_uid.get(uid)
        if where is None:
            return None
        return self._objects.get(where[0], {}).get(where[1])

    def dependents(self, uid: str, storage: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Objects whose ownerReferences name `uid` (optionally of one resource), by name."""
        out = []
        for where in sorted(self._dependents.get(uid, ())):
            if storage is not None and where[0] != storage:
                continue
            obj = self._objects.get(where[0], {}).get(where[1])
            if obj is not None:
                out.append(obj)
        return out

    def orphans(self) -> list[tuple[ResourceType, dict[str, Any]]]:
        """Objects all of whose owners are gone (what the garbage collector deletes)."""
        out = []
        for uid, deps in list(self._dependents.items()):
            if uid in self._by_uid:
                continue
            for storage, key in sorted(deps):
                obj = self._objects.get(storage, {}).get(key)
                rt = self.registry.by_storage(*storage)
                if obj is None or rt is None:
                    continue
                if all(r.get("uid") not in self._by_uid for r in meta(obj).get("ownerReferences") or []):
                    out.append((rt, obj))
        return out

    def _index_owners(self, where: tuple[tuple[str, str], Key], old: dict[str, Any] | None,
                      new: dict[str, Any] | None) -> None:
        old_uids = {r.get("uid") for r in (meta(old).get("ownerReferences") or [])} if old else set()
        new_uids = {r.get("uid") for r in (meta(new).get("ownerReferences") or [])} if new else set()
        for uid in old_uids - new_uids:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard(where)
                if not deps:
                    del self._dependents[uid]
        for uid in new_uids - old_uids:
            self._dependents.setdefault(uid, set()).add(where)

    def all_objects(self) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
        for storage, objs in list(self._objects.items()):
            for obj in list(objs.values()):
                yield storage, obj

    def namespace(self, name: str) -> dict[str, Any] | None:
        return self._objects.get(("", "namespaces"), {}).get(("", name))

    # -- committing (lock held) --------------------------------------------------------------------

    def _bump(self) -> int:
        self.rv += 1
        return self.rv

    def commit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Store `obj` (a new dict the store now owns) with a new resourceVersion; record the event."""
        with self.cond:
            rv = self._bump()
            m = meta(obj)
            m["resourceVersion"] = str(rv)
            key = (m.get("namespace", "") if rt.namespaced else "", m["name"])
            previous = self._objects.setdefault(rt.storage_key, {}).get(key)
            self._objects[rt.storage_key][key] = obj
            self._by_uid[m["uid"]] = (rt.storage_key, key)
            self._index_owners((rt.storage_key, key), previous, obj)
            self._record(WatchEvent(rv, "MODIFIED" if old is not None else "ADDED", rt.storage_key, obj, old))
            if rt.kind == "CustomResourceDefinition":
                self.registry.register_crd(obj)
            return obj

    def remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        with self.cond:
            m = meta(obj)
            key = (m.get("namespace", "") if rt.namespaced else "", m["name"])
            current = self._objects.get(rt.storage_key, {}).pop(key, None)
            if current is None:
                return obj
            self._by_uid.pop(meta(current).get("uid", ""), None)
            self._index_owners((rt.storage_key, key), current, None)
            gone = jcopy(current)
            rv = self._bump()
            meta(gone)["resourceVersion"] = str(rv)
            self._record(WatchEvent(rv, "DELETED", rt.storage_key, gone, current))
            if rt.kind == "CustomResourceDefinition":
                self._drop_custom_resources(gone)
            return gone

    def _record(self, event: WatchEvent) -> None:
        if len(self.history) == self.history.maxlen:
            self.floor = self.history[0].rv
        self.history.append(event)
        self.cond.notify_all()

    def _drop_custom_resources(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        storage = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        rt = self.registry.by_storage(*storage)
        if rt is not None:
            for obj in self.items(storage):
                self.remove(rt, obj)
        self.registry.unregister_crd(crd)

    def events_after(self, rv: int) -> list[WatchEvent]:
        """History events newer than rv (lock held). Raises Expired when rv is too old."""
        if rv < self.floor:
            raise expired(f"too old resource version: {rv} ({self.floor + 1})")
        out = []
        for event in reversed(self.history):
            if event.rv <= rv:
                break
            out.append(event)
        out.reverse()
        return out

    # -- internal writes for the controller (no validation, no admission) -------------------------

    def put(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update as a controller would; a write that changes nothing is skipped.

        `obj` must be a new dict (with its own metadata dict) that the store may keep: stored objects
        are never mutated in place, so unchanged parts may be shared with the previous version.
        Controller writes are not recorded in managedFields (only client requests are)."""
        with self.cond:
            m = meta(obj)
            old = self.lookup(rt, m.get("namespace", ""), m["name"])
            if old is None:
                new = normalize(jcopy(obj))
                nm = meta(new)
                nm.setdefault("uid", str(uuid.uuid4()))
                nm.setdefault("creationTimestamp", now_iso())
                if rt.generation:
                    nm.setdefault("generation", 1)
                new.setdefault("apiVersion", rt.group_version)
                new.setdefault("kind", rt.kind)
                default_object(rt, new)
                self._allocate(rt, new, None)
                return self.commit(rt, new, None)
            om = meta(old)
            m["resourceVersion"] = om.get("resourceVersion")
            if om.get("managedFields"):
                m["managedFields"] = om["managedFields"]
            else:
                m.pop("managedFields", None)
            if rt.generation and obj.get("spec") != old.get("spec"):
                m["generation"] = om.get("generation", 1) + 1
            if obj == old:
                return old
            if om.get("deletionTimestamp") and not m.get("finalizers") and rt.kind != "Namespace":
                return self.remove(rt, obj)
            return self.commit(rt, obj, old)

    def set_status(self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Write `status` on `obj` (stored) as the controller's status update."""
        new = dict(obj)
        new["metadata"] = dict(obj.get("metadata") or {})
        new["status"] = status
        return self.put(rt, new)

    # -- API operations ----------------------------------------------------------------------------

    def get(self, rt: ResourceType, ns: str, name: str) -> dict[str, Any]:
        with self.cond:
            obj = self.lookup(rt, ns, name)
            if obj is None:
                raise not_found(rt, name)
            return self._out(rt, obj)

    def list(self, rt: ResourceType, ns: str | None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = 0, continue_token: str = "") -> dict[str, Any]:
        labels_ok, fields_ok = self.selectors(rt, label_selector, field_selector)
        with self.cond:
            rv = self.rv
            items = [o for o in self.items(rt.storage_key, ns)
                     if labels_ok(meta(o).get("labels") or {}) and fields_ok(o)]
            start = 0
            if continue_token:
                try:
                    token = json.loads(base64.b64decode(continue_token))
                    after = tuple(token["start"])
                except (ValueError, KeyError, TypeError, binascii.Error) as e:
                    raise bad_request(f"invalid continue token: {e}") from e
                if int(token.get("rv", 0)) < self.floor:
                    raise expired("The provided continue parameter is too old to display a consistent list "
                                  "result. You can start a new list without the continue parameter, or use the "
                                  "continue token in this response to retrieve the remainder of the results.")
                keys = [(meta(o).get("namespace", ""), meta(o)["name"]) for o in items]
                start = next((i for i, k in enumerate(keys) if k > after), len(items))
            page = items[start:start + limit] if limit > 0 else items[start:]
            list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
            remaining = len(items) - start - len(page)
            if limit > 0 and remaining > 0:
                last = meta(page[-1])
                list_meta["continue"] = base64.b64encode(json.dumps(
                    {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}).encode()).decode()
                list_meta["remainingItemCount"] = remaining
            out_items = []
            for o in page:
                item = self._out(rt, o)
                if rt.builtin:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                out_items.append(item)
            return {"kind": f"{rt.kind}List", "apiVersion": rt.group_version, "metadata": list_meta,
                    "items": out_items}

    @staticmethod
    def selectors(rt: ResourceType, label_selector: str | None,
                  field_selector: str | None) -> tuple[Callable[[dict[str, str]], bool],
                                                       Callable[[dict[str, Any]], bool]]:
        try:
            return parse_label_selector(label_selector), parse_field_selector(field_selector, rt.kind)
        except SelectorError as e:
            raise bad_request(str(e)) from e

    def create(self, rt: ResourceType, ns: str, body: Any, *, manager: str,
               dry_run: bool = False) -> dict[str, Any]:
        obj = self._check_body(rt, ns, body)
        m = meta(obj)
        if m.get("resourceVersion"):
            raise ApiError(500, "InternalError",
                           "Internal error occurred: resourceVersion should not be set on objects to be created")
        with self.cond:
            if not m.get("name") and m.get("generateName"):
                for _ in range(10):
                    m["name"] = f"{m['generateName']}{random_suffix()}"
                    if self.lookup(rt, ns, m["name"]) is None:
                        break
            if rt.has_status and rt.kind != "CustomResourceDefinition":
                obj.pop("status", None)
            meta(obj).pop("managedFields", None)
            return self._create_prepared(rt, ns, normalize(obj), dry_run=dry_run, record_manager=manager)

    def _create_prepared(self, rt: ResourceType, ns: str, obj: dict[str, Any], *, dry_run: bool,
                         record_manager: str = "") -> dict[str, Any]:
        """Admission, defaulting, validation and storage of a new object (lock held)."""
        m = meta(obj)
        name = m.get("name") or ""
        if not name:
            raise invalid(rt, name, validate(rt, obj, None))
        if rt.namespaced:
            namespace = self.namespace(ns)
            if namespace is None:
                raise namespace_not_found(ns)
            if meta(namespace).get("deletionTimestamp"):
                raise ApiError(403, "Forbidden",
                               f'{rt.group_resource} "{name}" is forbidden: unable to create new content in '
                               f"namespace {ns} because it is being terminated",
                               _details(rt, name, causes=[{"reason": "NamespaceTerminating", "message":
                                        f"namespace {ns} is being terminated",
                                        "field": "metadata.namespace"}]))
        if self.lookup(rt, ns, name) is not None:
            causes = validate(rt, obj, None)
            if causes:
                raise invalid(rt, name, causes)
            raise already_exists(rt, name)
        m["uid"] = str(uuid.uuid4())
        m["creationTimestamp"] = now_iso()
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            m.pop(k, None)
        if rt.generation:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        obj["apiVersion"] = rt.group_version
        obj["kind"] = rt.kind
        default_object(rt, obj)
        if record_manager:
            ssa.record_update(None, obj, manager=record_manager, api_version=rt.group_version, now=now_iso())
        causes = validate(rt, obj, None)
        if rt.kind == "CustomResourceDefinition":
            causes += _validate_crd(obj)
        if causes:
            raise invalid(rt, name, causes)
        if rt.kind == "CustomResourceDefinition":
            obj["status"] = _crd_status(obj)
        if dry_run:
            self._allocate(rt, obj, None, dry_run=True)
            return self._out(rt, obj)
        self._allocate(rt, obj, None)
        return self._out(rt, self.commit(rt, obj, None))

    def replace(self, rt: ResourceType, ns: str, name: str, body: Any, *, manager: str, dry_run: bool = False,
                subresource: str = "") -> dict[str, Any]:
        obj = self._check_body(rt, ns, body, name=name)
        with self.cond:
            old = self.lookup(rt, ns, name)
            if old is None:
                raise not_found(rt, name)
            self._preconditions(rt, name, old, meta(obj).get("resourceVersion"), meta(obj).get("uid"))
            return self._update(rt, old, obj, manager=manager, dry_run=dry_run, subresource=subresource)

    def patch(self, rt: ResourceType, ns: str, name: str, patch_type: str, raw: bytes, *, manager: str,
              force: bool = False, dry_run: bool = False, subresource: str = "") -> tuple[int, dict[str, Any]]:
        """Returns (status code, object): 201 when an apply created the object."""
        if patch_type == "apply":
            if not manager:
                raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                                               "value: is required for apply patch",
                               {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                                   {"reason": "FieldValueRequired", "message": "Required value: is required for "
                                    "apply patch", "field": "fieldManager"}]})
            return self._apply(rt, ns, name, raw, manager=manager, force=force, dry_run=dry_run,
                               subresource=subresource)
        if force:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                                           "specified for non-apply patch",
                           {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                               {"reason": "FieldValueForbidden", "message": "Forbidden: may not be specified for "
                                "non-apply patch", "field": "force"}]})
        try:
            patch = json.loads(raw or b"null")
        except ValueError as e:
            raise bad_request(f"error decoding patch: {e}") from e
        with self.cond:
            old = self.lookup(rt, ns, name)
            if old is None:
                raise not_found(rt, name)
            base = jcopy(old)
            try:
                if patch_type == "json":
                    new = ssa.json_patch(base, patch)
                elif patch_type == "merge":
                    if not isinstance(patch, dict):
                        raise ssa.MergeError("merge patch must be a JSON object")
                    new = ssa.merge_patch(base, patch)
                else:
                    if not isinstance(patch, dict):
                        raise ssa.MergeError("strategic merge patch must be a JSON object")
                    new = ssa.strategic_merge_patch(base, patch)
            except ssa.MergeError as e:
                code = 422 if patch_type == "json" else 400
                raise ApiError(code, "Invalid" if code == 422 else "BadRequest", str(e)) from e
            if not isinstance(new, dict):
                raise bad_request("patch result is not an object")
            patched_rv = meta(new).get("resourceVersion")
            if patched_rv != meta(old).get("resourceVersion"):
                self._preconditions(rt, name, old, patched_rv, None)
            return 200, self._update(rt, old, new, manager=manager, dry_run=dry_run, subresource=subresource)

    def _apply(self, rt: ResourceType, ns: str, name: str, raw: bytes, *, manager: str, force: bool,
               dry_run: bool, subresource: str) -> tuple[int, dict[str, Any]]:
        try:
            applied = json.loads(raw or b"null")  # clients (kubectl, envship) send JSON, which is YAML
        except ValueError:
            try:
                applied = yaml.load(raw.decode() or "null", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except (yaml.YAMLError, UnicodeDecodeError) as e:
                raise bad_request(f"error decoding YAML: {e}") from e
        if not isinstance(applied, dict):
            raise bad_request("the body of an apply patch must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("invalid object type: /, Kind=" if not applied.get("kind") else
                              f"invalid object type: /, Kind={applied.get('kind')}")
        applied = self._check_body(rt, ns, applied, name=name)
        meta(applied)["name"] = name
        with self.cond:
            old = self.lookup(rt, ns, name)
            now = now_iso()
            if old is None:
                if subresource:
                    raise not_found(rt, name)
                try:
                    obj = ssa.apply(None, applied, manager=manager, api_version=rt.group_version, force=force,
                                    now=now, status_separate=rt.has_status)
                except ssa.MergeError as e:
                    raise ApiError(422, "Invalid", str(e)) from e
                managed = meta(obj).get("managedFields")
                obj = normalize(obj)
                if managed:
                    meta(obj)["managedFields"] = managed
                if rt.has_status and rt.kind != "CustomResourceDefinition":
                    obj.pop("status", None)
                return 201, self._create_prepared(rt, ns, obj, dry_run=dry_run)
            self._preconditions(rt, name, old, meta(applied).get("resourceVersion"), meta(applied).get("uid"))
            try:
                merged = ssa.apply(old, applied, manager=manager, api_version=rt.group_version, force=force,
                                   now=now, subresource=subresource, status_separate=rt.has_status)
            except ssa.ApplyConflict as e:
                raise _conflict_error(rt, name, e) from e
            except ssa.MergeError as e:
                raise ApiError(422, "Invalid", str(e)) from e
            return 200, self._update(rt, old, merged, manager=manager, dry_run=dry_run, subresource=subresource,
                                     record=False)

    def _update(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], *, manager: str, dry_run: bool,
                subresource: str, record: bool = True) -> dict[str, Any]:
        """The common tail of replace/patch/apply (lock held). With record=False, `new` carries the
        managedFields an apply computed; otherwise the update is recorded for `manager`."""
        om = meta(old)
        managed = jcopy(meta(new).get("managedFields") if not record else om.get("managedFields"))
        if rt.has_status and subresource == "status":
            status = new.get("status")
            new = jcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = jcopy(status)
        else:
            new = jcopy(new)
            if rt.has_status:
                if "status" in old:
                    new["status"] = jcopy(old["status"])
                else:
                    new.pop("status", None)
        nm = meta(new)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "namespace", "name", "resourceVersion"):
            if k in om:
                nm[k] = jcopy(om[k])
            else:
                nm.pop(k, None)
        nm.pop("managedFields", None)
        new["apiVersion"] = old.get("apiVersion", rt.group_version)
        new["kind"] = rt.kind
        if rt.kind == "Service":
            _retain_service_allocations(old, new)
        new = normalize(new)
        default_object(rt, new)
        causes = validate(rt, new, old)
        if causes:
            raise invalid(rt, om["name"], causes)
        nm = meta(new)
        if managed:
            nm["managedFields"] = managed
        if record:
            ssa.record_update(old, new, manager=manager, api_version=rt.group_version, now=now_iso(),
                              subresource=subresource, status_separate=rt.has_status)
        if rt.generation and new.get("spec") != old.get("spec"):
            nm["generation"] = om.get("generation", 1) + 1
        if rt.kind == "CustomResourceDefinition":
            new["status"] = _crd_status(new)
        if new == old:
            return self._out(rt, old)
        if dry_run:
            return self._out(rt, new)
        self._allocate(rt, new, old)
        if om.get("deletionTimestamp") and not nm.get("finalizers") and rt.kind != "Namespace":
            return self._out(rt, self.remove(rt, new))
        return self._out(rt, self.commit(rt, new, old))

    def delete(self, rt: ResourceType, ns: str, name: str, *, options: dict[str, Any] | None = None,
               dry_run: bool = False, propagation: str = "") -> tuple[int, dict[str, Any]]:
        options = options or {}
        with self.cond:
            obj = self.lookup(rt, ns, name)
            if obj is None:
                raise not_found(rt, name)
            pre = options.get("preconditions") or {}
            self._preconditions(rt, name, obj, pre.get("resourceVersion"), pre.get("uid"))
            policy = propagation or options.get("propagationPolicy") or ""
            if not policy and options.get("orphanDependents") is not None:
                policy = "Orphan" if options["orphanDependents"] else "Background"
            if not policy:
                policy = "Orphan" if rt.kind in ("Job",) else "Background"
            if rt.kind == "Namespace":
                if name in PROTECTED_NAMESPACES:
                    raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be '
                                                     "deleted", {"name": name, "kind": "namespaces"})
                if meta(obj).get("deletionTimestamp"):
                    raise conflict(rt, name, TERMINATING_MESSAGE)
                new = jcopy(obj)
                meta(new)["deletionTimestamp"] = now_iso()
                new.setdefault("status", {})["phase"] = "Terminating"
                if dry_run:
                    return 200, self._out(rt, new)
                return 200, self._out(rt, self.commit(rt, new, obj))
            if meta(obj).get("finalizers"):
                if dry_run or meta(obj).get("deletionTimestamp"):
                    return 200, self._out(rt, obj)
                new = jcopy(obj)
                meta(new)["deletionTimestamp"] = now_iso()
                meta(new)["deletionGracePeriodSeconds"] = 0
                return 200, self._out(rt, self.commit(rt, new, obj))
            if dry_run:
                return 200, self._deleted_reply(rt, obj)
            gone = self.remove(rt, obj)
            self.cascade(meta(gone)["uid"], orphan=policy == "Orphan")
            return 200, self._deleted_reply(rt, gone)

    def _deleted_reply(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        # Pods (graceful deletion) answer with the object, other kinds with a success Status.
        if rt.kind == "Pod" or not rt.builtin:
            return self._out(rt, obj)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": _details(rt, meta(obj)["name"], uid=meta(obj)["uid"])}

    def cascade(self, uid: str, *, orphan: bool = False) -> None:
        """Delete (or orphan) every object whose ownerReferences name `uid`, recursively."""
        with self.cond:
            for where in sorted(self._dependents.get(uid, ())):
                storage = where[0]
                obj = self._objects.get(storage, {}).get(where[1])
                if obj is None:
                    continue
                refs = meta(obj).get("ownerReferences") or []
                rt = self.registry.by_storage(*storage)
                if rt is None:
                    continue
                if orphan:
                    new = jcopy(obj)
                    remaining = [r for r in refs if r.get("uid") != uid]
                    if remaining:
                        meta(new)["ownerReferences"] = remaining
                    else:
                        meta(new).pop("ownerReferences", None)
                    self.commit(rt, new, obj)
                elif len(refs) == 1 or not any(self.by_uid(r.get("uid", "")) for r in refs if r.get("uid") != uid):
                    gone = self.remove(rt, obj)
                    self.cascade(meta(gone)["uid"])

    def delete_collection(self, rt: ResourceType, ns: str | None, *, label_selector: str | None,
                          field_selector: str | None, dry_run: bool = False,
                          options: dict[str, Any] | None = None, propagation: str = "") -> dict[str, Any]:
        labels_ok, fields_ok = self.selectors(rt, label_selector, field_selector)
        with self.cond:
            deleted = []
            for obj in list(self.items(rt.storage_key, ns)):
                if not (labels_ok(meta(obj).get("labels") or {}) and fields_ok(obj)):
                    continue
                m = meta(obj)
                try:
                    _, reply = self.delete(rt, m.get("namespace", ""), m["name"], options=options, dry_run=dry_run,
                                           propagation=propagation)
                except ApiError:
                    continue
                deleted.append(reply if reply.get("kind") != "Status" else self._out(rt, obj))
            items = []
            for item in deleted:
                if rt.builtin:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                items.append(item)
            return {"kind": f"{rt.kind}List", "apiVersion": rt.group_version,
                    "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    # -- helpers -------------------------------------------------------------------------------------

    def _out(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = jcopy(obj)
        out["apiVersion"] = rt.group_version
        out["kind"] = rt.kind
        return out

    def _check_body(self, rt: ResourceType, ns: str, body: Any, *, name: str | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = jcopy(body)
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind of the provided object ({kind}) does not match the kind of the resource "
                              f"({rt.kind})")
        api_version = obj.get("apiVersion")
        if api_version and api_version.split("/")[0] != (rt.group or "v1") and api_version != rt.group_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                              f"version ({rt.group_version})")
        m = meta(obj)
        if rt.namespaced:
            if m.get("namespace") and m["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            m["namespace"] = ns
        else:
            m.pop("namespace", None)
        if name is not None:
            if m.get("name") and m["name"] != name:
                raise bad_request(f"the name of the object ({m['name']}) does not match the name on the URL "
                                  f"({name})")
            m["name"] = name
        return obj

    def _preconditions(self, rt: ResourceType, name: str, obj: dict[str, Any], rv: Any, uid: Any) -> None:
        m = meta(obj)
        if uid and uid != m.get("uid"):
            raise conflict(rt, name, f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                                     f"{m.get('uid')}")
        if rv and str(rv) != m.get("resourceVersion"):
            raise conflict(rt, name, STALE)

    def _allocate(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, *,
                  dry_run: bool = False) -> None:
        """Cluster IPs and node ports for Services."""
        if rt.kind != "Service":
            return
        spec = obj.setdefault("spec", {})
        stype = spec.get("type", "ClusterIP")
        if stype != "ExternalName" and not spec.get("clusterIP"):
            ip = f"10.96.{self._next_ip // 250}.{self._next_ip % 250 + 1}"
            if not dry_run:
                self._next_ip += 1
            spec["clusterIP"] = ip
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if stype in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    port["nodePort"] = self._next_node_port
                    if not dry_run:
                        self._next_node_port += 1


def _retain_service_allocations(old: dict[str, Any], new: dict[str, Any]) -> None:
    ospec, nspec = old.get("spec") or {}, new.setdefault("spec", {})
    if ospec.get("clusterIP") and not nspec.get("clusterIP") and nspec.get("type", "ClusterIP") != "ExternalName":
        nspec["clusterIP"] = ospec["clusterIP"]
        nspec["clusterIPs"] = ospec.get("clusterIPs") or [ospec["clusterIP"]]
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in ospec.get("ports") or []
                 if isinstance(p, dict)}
    if nspec.get("type", "ClusterIP") in ("NodePort", "LoadBalancer"):
        for p in nspec.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                if prev and prev.get("nodePort"):
                    p["nodePort"] = prev["nodePort"]


def _conflict_error(rt: ResourceType, name: str, e: ssa.ApplyConflict) -> ApiError:
    n = len(e.conflicts)
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{mgr}" using {api}',
               "field": ssa.render_path(path)} for mgr, api, path in e.conflicts]
    if n == 1:
        mgr, api, path = e.conflicts[0]
        message = f'Apply failed with 1 conflict: conflict with "{mgr}" using {api}: {ssa.render_path(path)}'
    else:
        by_manager: dict[tuple[str, str], list[str]] = {}
        for mgr, api, path in e.conflicts:
            by_manager.setdefault((mgr, api), []).append(ssa.render_path(path))
        parts = []
        for (mgr, api), paths in by_manager.items():
            if len(paths) == 1:
                parts.append(f'conflict with "{mgr}" using {api}: {paths[0]}')
            else:
                parts.append(f'conflicts with "{mgr}" using {api}:\n' + "\n".join(f"- {p}" for p in paths))
        message = f"Apply failed with {n} conflicts: " + "\n".join(parts)
    return ApiError(409, "Conflict", message, {"causes": causes})


def _validate_crd(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    for field in ("group",):
        if not spec.get(field):
            causes.append(Cause("Required", f"spec.{field}"))
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(Cause("Required", f"spec.names.{field}"))
    if not spec.get("versions"):
        causes.append(Cause("Required", "spec.versions"))
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if meta(obj).get("name") != expected:
        causes.append(Cause("Invalid", "metadata.name", "must be spec.names.plural+\".\"+spec.group",
                            meta(obj).get("name")))
    return causes


def _crd_status(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    stored = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    old = obj.get("status") or {}
    conds = old.get("conditions") or []
    if not conds:
        ts = now_iso()
        conds = [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                  "message": "no conflicts found", "lastTransitionTime": ts},
                 {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                  "message": "the initial names have been accepted", "lastTransitionTime": ts}]
    return {"acceptedNames": names, "conditions": conds, "storedVersions": stored}
