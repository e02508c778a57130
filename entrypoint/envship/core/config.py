"""envship.yaml: parse and validate into frozen dataclasses (pure: text in, Config out).

Validation collects every problem, each with file, line, column and a hint, and raises them together,
so a user fixes a config in one round instead of one error per run.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import ConfigError, Location, Problem
from .imageref import ImageRefError, parse_image_ref
from .naming import ENV_KEY, expand_placeholders, is_dns_label, placeholders
from .yamlsrc import Path, YamlDoc, YamlSyntaxError, parse_documents

TOP_KEYS = ("app", "image", "manifests", "env", "environments", "routes")
ENV_KEYS = (
    "cluster", "context", "namespace", "host", "env", "promote-from", "protected",
    "preview", "ttl", "max", "adopt", "create-namespace", "endpoint", "routes", "require-label",
)
GKE_ENDPOINTS = ("public", "private", "dns")
ROUTE_KEYS = ("cloudflare", "smoke-check")
CLOUDFLARE_KEYS = ("zone", "mode", "target", "account", "tunnel", "service", "lock-namespace")
SMOKE_KEYS = ("path", "status", "timeout", "scheme")
SERVICE_PLACEHOLDERS = ("namespace", "pr")
MAX_SMOKE_TIMEOUT = timedelta(minutes=30)
CLOUDFLARE_MODES = ("dns", "tunnel")
PREVIEW_PLACEHOLDERS = ("pr",)
# GKE's names: a project ID (6-30 characters), a project number, or a domain-scoped project ID
# (`example.com:proj`); a region or zone; a cluster name of at most 40 characters.
PROJECT_ID = r"[a-z][-a-z0-9]{4,28}[a-z0-9]"
CLUSTER_RE = re.compile(
    rf"projects/(?:{PROJECT_ID}|[0-9]{{1,20}}|[a-z0-9][-a-z0-9.]{{0,61}}[a-z0-9]:{PROJECT_ID})"
    r"/locations/[a-z]+-[a-z]+[0-9]+(?:-[a-z])?/clusters/[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?"
)
MAX_DURATION = timedelta(days=3650)  # anything longer is a typo, and timedelta overflows further on
DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
HOST_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ACCOUNT_RE = re.compile(r"[0-9a-f]{32}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SERVICE_RE = re.compile(r"(?:(?:https?|tcp|ssh|rdp|smb|unix|unix\+tls)://[^\s]{1,500}|http_status:[1-5][0-9][0-9]|hello_world)")
DEFAULT_MANIFESTS = "deploy"
SAMPLE_PR = "1"
BUILTIN_PREFIX = "ENVSHIP_"
BUILTIN_VARIABLES = ("ENVSHIP_ENVIRONMENT", "ENVSHIP_HOST", "ENVSHIP_IMAGE", "ENVSHIP_NAMESPACE", "ENVSHIP_PR")
_REFERENCE = re.compile(r"(?<!\$)\$\{([^{}]*)\}")


@dataclass(frozen=True)
class SmokeCheck:
    """An HTTP check of the new route after the cut-over: `scheme://HOST/path` must answer `status` within
    `timeout` seconds (retried meanwhile, as the edge picks the change up)."""

    path: str = "/"
    status: int = 200
    timeout: float = 60.0
    scheme: str = "https"


@dataclass(frozen=True)
class CloudflareRoutes:
    zone: str
    mode: str = "dns"
    target: str = "ingress"
    account: str | None = None
    tunnel: str | None = None
    service: str | None = None       # tunnel mode; may use {namespace} and {pr}
    lock_namespace: str = "default"  # where the Lease serialising envship's writers of one tunnel lives
    smoke_check: SmokeCheck | None = None
    location: Location | None = None


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    cluster: str | None = None
    context: str | None = None
    host: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    promote_from: str | None = None
    protected: bool = False
    preview: bool = False
    ttl: timedelta | None = None
    max: int | None = None
    adopt: bool = False
    create_namespace: bool = False
    endpoint: str = "public"  # which GKE control-plane endpoint: public, private or dns
    routes: bool = True       # false: no Cloudflare route for this environment (a local cluster, say)
    require_label: str = ""   # previews: only pull requests with this label get one
    location: Location | None = None


@dataclass(frozen=True)
class Config:
    file: str
    app: str
    image: str
    manifests: str
    env: Mapping[str, str]
    environments: Mapping[str, Environment]
    cloudflare: CloudflareRoutes | None = None
    manifests_location: Location | None = None

    def environment(self, name: str) -> Environment | None:
        return self.environments.get(name)


def parse_config(text: str, file: str) -> Config:
    """Parse envship.yaml text; raise ConfigError listing every problem."""
    try:
        docs = parse_documents(text, file)
    except YamlSyntaxError as e:
        raise ConfigError(e.problems) from e
    if len(docs) != 1:
        where = Location(file, docs[1].line, 1) if len(docs) > 1 else Location(file, 1, 1)
        raise ConfigError([Problem(
            f"expected exactly one YAML document, found {len(docs)}", where,
            "envship.yaml holds one mapping with app, image, manifests and environments",
        )])
    return _Validator(docs[0]).config()


def parse_duration(text: str, most: timedelta = MAX_DURATION) -> timedelta | None:
    """`72h`, `1h30m`, `7d`, `45s` -> timedelta; None if malformed, zero or longer than `most`."""
    match = DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) and len(text) <= 40 else None
    if not match or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if not 0 < total <= most.total_seconds():
        return None
    return timedelta(seconds=total)


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


class _Validator:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.top_env: dict[str, str] = {}

    # -- reporting ------------------------------------------------------------------------------
    def problem(self, path: Path, message: str, hint: str = "", key: bool = False) -> None:
        self.problems.append(Problem(message, self.doc.at(path, key=key), hint))

    def check_keys(self, mapping: Mapping[Any, Any], path: Path, allowed: tuple[str, ...], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
                self.problem(path + (key,), f"unknown key '{key}' in {where}", hint, key=True)

    def typed(self, mapping: Mapping[Any, Any], path: Path, key: str, kind: type | tuple[type, ...],
              expected: str) -> Any:
        if key not in mapping:
            return None
        value = mapping[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.problem(path + (key,), f"'{key}' must be {expected}, not {_type_name(value)}",
                         f"set '{key}' to {expected}")
            return None
        return value

    # -- top level ------------------------------------------------------------------------------
    def config(self) -> Config:
        root = self.doc.value
        if not isinstance(root, dict):
            self.problem((), f"the config must be a mapping, not {_type_name(root)}",
                         "start with 'app: NAME' on the first line")
            raise ConfigError(self.problems)
        self.check_keys(root, (), TOP_KEYS, "the config")
        app = self.app(root)
        image = self.image(root)
        manifests = self.typed(root, (), "manifests", str, "a path to a file or directory") or DEFAULT_MANIFESTS
        env = self.top_env = self.env_map(root, ())
        cloudflare = self.routes(root)
        environments = self.environments(root, app or "app", cloudflare)
        if self.problems:
            raise ConfigError(self.problems)
        manifests_loc = self.doc.at(("manifests",)) if "manifests" in root else Location(self.doc.file)
        return Config(self.doc.file, app, image, manifests, env, environments, cloudflare, manifests_loc)

    def required(self, root: Mapping[str, Any], key: str, example: str) -> bool:
        if key in root:
            return True
        self.problem((), f"missing required key '{key}'", f"add '{example}'")
        return False

    def app(self, root: Mapping[str, Any]) -> str:
        if not self.required(root, "app", "app: my-app"):
            return ""
        app = self.typed(root, (), "app", str, "a string")
        if app is not None and not is_dns_label(app):
            self.problem(("app",), f"app '{app}' is not a DNS-1123 label",
                         "use at most 63 lowercase letters, digits and '-', starting and ending alphanumeric")
            return ""
        return app or ""

    def image(self, root: Mapping[str, Any]) -> str:
        if not self.required(root, "image", "image: ghcr.io/OWNER/APP"):
            return ""
        image = self.typed(root, (), "image", str, "an image repository such as ghcr.io/acme/hello")
        if image is None:
            return ""
        try:
            ref = parse_image_ref(image)
        except ImageRefError as e:
            self.problem(("image",), str(e), "write the repository only, e.g. ghcr.io/acme/hello")
            return ""
        if ref.tag or ref.digest:
            self.problem(("image",), f"image '{image}' must be a repository without tag or digest",
                         f"write 'image: {ref.repository}'; the digest comes from the build job (--image)")
            return ""
        return ref.repository

    def env_map(self, parent: Mapping[str, Any], path: Path) -> dict[str, str]:
        env = None if parent.get("env") is None else self.typed(parent, path, "env", dict, "a mapping of NAME: value")
        result: dict[str, str] = {}
        for key, value in (env or {}).items():
            here = path + ("env", key)
            if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
                self.problem(here, f"variable name '{key}' is not a valid environment variable name",
                             "use letters, digits, '_', '-' and '.', not starting with a digit", key=True)
                continue
            if key.startswith(BUILTIN_PREFIX):
                self.problem(here, f"variable name '{key}' is reserved",
                             f"names starting with {BUILTIN_PREFIX} are set by envship; rename it", key=True)
                continue
            for name in _REFERENCE.findall(value) if isinstance(value, str) else []:
                if name not in BUILTIN_VARIABLES:
                    self.problem(here, f"variable '{key}' refers to ${{{name}}}, which is not available here",
                                 f"variable values may use {', '.join(BUILTIN_VARIABLES)}; "
                                 f"write $${{{name}}} for a literal")
            if isinstance(value, bool):
                result[key] = "true" if value else "false"
            elif isinstance(value, (str, int, float)):
                result[key] = str(value)
            else:
                self.problem(here, f"variable '{key}' must be a string, number or boolean, not {_type_name(value)}",
                             "quote the value; use \"\" for an empty one")
        return result

    # -- routes ---------------------------------------------------------------------------------
    def routes(self, root: Mapping[str, Any]) -> CloudflareRoutes | None:
        routes = self.typed(root, (), "routes", dict, "a mapping with a 'cloudflare' section")
        if not routes:
            return None
        self.check_keys(routes, ("routes",), ROUTE_KEYS, "routes")
        smoke = self.smoke_check(routes)
        if "cloudflare" not in routes:
            self.problem(("routes",), "routes needs a 'cloudflare' section", "add 'cloudflare: {zone: example.com}'",
                         key=True)
        path: Path = ("routes", "cloudflare")
        cf = self.typed(routes, ("routes",), "cloudflare", dict, "a mapping")
        if cf is None:
            return None
        self.check_keys(cf, path, CLOUDFLARE_KEYS, "routes.cloudflare")
        zone = self.typed(cf, path, "zone", str, "a domain name such as example.com")
        if "zone" not in cf:
            self.problem(path, "missing required key 'zone' in routes.cloudflare", "add 'zone: example.com'")
        elif zone is not None and not _valid_host(zone):
            self.problem(path + ("zone",), f"zone '{zone}' is not a valid domain name",
                         "write the Cloudflare zone's domain, e.g. example.com")
        mode = self.typed(cf, path, "mode", str, "'dns' or 'tunnel'") or "dns"
        if mode not in CLOUDFLARE_MODES:
            self.problem(path + ("mode",), f"unknown mode '{mode}'",
                         did_you_mean(mode, CLOUDFLARE_MODES) or "use 'dns' or 'tunnel'")
        target = self.typed(cf, path, "target", str, "'ingress', an IP address or a hostname") or "ingress"
        if target != "ingress" and not _valid_ip(target) and not _valid_host(target):
            self.problem(path + ("target",), f"target '{target}' is not 'ingress', an IP address or a hostname",
                         "use 'ingress' (the address the cluster's Ingress publishes), an IP address or a hostname")
        fields = {k: self.typed(cf, path, k, str, "a string") for k in ("account", "tunnel", "service")}
        if mode == "tunnel":
            hints = {"account": "give the Cloudflare account id (32 hexadecimal digits)",
                     "tunnel": "give the tunnel's UUID (Zero Trust > Networks > Tunnels)",
                     "service": "give the in-cluster address cloudflared forwards to, e.g. "
                                "http://hello.{namespace}.svc.cluster.local:80"}
            for key, hint in hints.items():
                if key not in cf:
                    self.problem(path, f"mode 'tunnel' needs '{key}' in routes.cloudflare", hint, key=True)
            self.tunnel_fields(fields, path)
        elif mode == "dns":
            for key in ("account", "tunnel", "service", "lock-namespace"):
                if key in cf:
                    self.problem(path + (key,), f"'{key}' is only used with mode 'tunnel'",
                                 "remove it, or set 'mode: tunnel'", key=True)
        lock_namespace = self.typed(cf, path, "lock-namespace", str, "a namespace name") or "default"
        if not is_dns_label(lock_namespace):
            self.problem(path + ("lock-namespace",), f"lock-namespace '{lock_namespace}' is not a namespace name",
                         "use an existing namespace every deploy using this tunnel may write Leases in")
        return CloudflareRoutes(zone or "", mode, target, **fields, lock_namespace=lock_namespace,
                                smoke_check=smoke, location=self.doc.at(path, key=True))

    def tunnel_fields(self, fields: Mapping[str, str | None], path: Path) -> None:
        account, tunnel, service = fields["account"], fields["tunnel"], fields["service"]
        if account is not None and not ACCOUNT_RE.fullmatch(account):
            self.problem(path + ("account",), f"account '{account}' is not a Cloudflare account id",
                         "copy the 32-hexadecimal-digit account id from the dashboard's overview page")
        if tunnel is not None and not UUID_RE.fullmatch(tunnel.lower()):
            self.problem(path + ("tunnel",), f"tunnel '{tunnel}' is not a tunnel UUID",
                         "copy the tunnel's id (a UUID such as 6ff42ae2-765d-4adf-8112-31c55c1551ef)")
        if service is None:
            return
        for ph in placeholders(service):
            if ph not in SERVICE_PLACEHOLDERS:
                self.problem(path + ("service",), f"unknown placeholder '{{{ph}}}' in service",
                             "service may use {namespace} and {pr}")
        sample = expand_placeholders(service, {"namespace": "ns", "pr": SAMPLE_PR})
        if not SERVICE_RE.fullmatch(sample):
            self.problem(path + ("service",), f"service '{service}' is not an address cloudflared can forward to",
                         "write scheme://host:port, e.g. http://hello.{namespace}.svc.cluster.local:80 "
                         "(schemes: http, https, tcp, ssh, rdp, unix, unix+tls, smb), or http_status:404")

    def smoke_check(self, routes: Mapping[str, Any]) -> SmokeCheck | None:
        path: Path = ("routes", "smoke-check")
        body = self.typed(routes, ("routes",), "smoke-check", dict, "a mapping with path, status and timeout")
        if body is None:
            return None
        self.check_keys(body, path, SMOKE_KEYS, "routes.smoke-check")
        url_path = self.typed(body, path, "path", str, "a URL path such as /healthz") or "/"
        if not url_path.startswith("/") or any(c in url_path for c in " #\r\n"):
            self.problem(path + ("path",), f"path '{url_path}' is not a URL path", "write it like /healthz")
        status = self.typed(body, path, "status", int, "an HTTP status code")
        if status is not None and not 100 <= status <= 599:
            self.problem(path + ("status",), f"status {status} is not an HTTP status code", "use e.g. 200")
        timeout_text = self.typed(body, path, "timeout", str, "a duration such as 60s")
        timeout = parse_duration(timeout_text, MAX_SMOKE_TIMEOUT) if timeout_text is not None else None
        if timeout_text is not None and timeout is None:
            self.problem(path + ("timeout",), f"timeout '{timeout_text}' is not a duration of at most 30m",
                         "write e.g. 60s or 2m")
        scheme = self.typed(body, path, "scheme", str, "'https' or 'http'") or "https"
        if scheme not in ("https", "http"):
            self.problem(path + ("scheme",), f"scheme '{scheme}' is neither 'https' nor 'http'",
                         did_you_mean(scheme, ("https", "http")) or "use https (or http for a local setup)")
        return SmokeCheck(url_path, status or 200, timeout.total_seconds() if timeout else 60.0, scheme)

    # -- environments ---------------------------------------------------------------------------
    def environments(self, root: Mapping[str, Any], app: str,
                     cloudflare: CloudflareRoutes | None) -> dict[str, Environment]:
        if not self.required(root, "environments", "environments: {staging: {context: kind-dev}}"):
            return {}
        envs = self.typed(root, (), "environments", dict, "a mapping of environment names")
        if envs is not None and not envs:
            self.problem(("environments",), "no environments are defined", "add at least one, e.g. staging")
        result: dict[str, Environment] = {}
        for name, body in (envs or {}).items():
            env = self.environment(str(name), body, app, cloudflare)
            if env is not None:
                result[env.name] = env
        self.promotions(envs or {}, result)
        return result

    def environment(self, name: str, body: Any, app: str,
                    cloudflare: CloudflareRoutes | None) -> Environment | None:
        path: Path = ("environments", name)
        if not is_dns_label(name):
            self.problem(path, f"environment name '{name}' is not a DNS-1123 label",
                         "use lowercase letters, digits and '-' (it becomes a label value)", key=True)
        if not isinstance(body, dict):
            self.problem(path, f"environment '{name}' must be a mapping, not {_type_name(body)}",
                         "give it at least 'context:' or 'cluster:'")
            return None
        self.check_keys(body, path, ENV_KEYS, f"environment '{name}'")

        def flag(key: str) -> bool:
            return bool(self.typed(body, path, key, bool, "true or false"))

        preview, protected = flag("preview"), flag("protected")
        cluster, context = self.target(body, path, name)
        namespace = self.templated(body, path, "namespace", name, preview,
                                   default=_default_namespace(app, name, preview))
        host = self.templated(body, path, "host", name, preview, default=None)
        sample_host = expand_placeholders(host, {"pr": SAMPLE_PR}) if host else ""
        if sample_host and cloudflare and cloudflare.zone and not _in_zone(sample_host, cloudflare.zone):
            self.problem(path + ("host",), f"host '{host}' is not inside the Cloudflare zone '{cloudflare.zone}'",
                         f"use a name ending in .{cloudflare.zone}, or change routes.cloudflare.zone")
        ttl, max_count = self.preview_limits(body, path, name, preview)
        if preview and protected:
            self.problem(path + ("protected",), f"preview environment '{name}' cannot be protected",
                         "previews are torn down when their pull request closes; remove 'protected'", key=True)
        promote_from = self.typed(body, path, "promote-from", str, "the name of another environment")
        create_ns = body.get("create-namespace", preview)
        if "create-namespace" in body:
            create_ns = flag("create-namespace")
        own_env = self.env_map(body, path)
        self.builtin_references(name, own_env, path, host is not None, preview)
        endpoint = self.endpoint(body, path, cluster)
        require_label = self.typed(body, path, "require-label", str, "a label name") or ""
        if "require-label" in body and not preview:
            self.problem(path + ("require-label",), "'require-label' only applies to preview environments",
                         "add 'preview: true' to this environment, or remove it", key=True)
        elif require_label and (len(require_label) > 50 or not require_label.strip()):
            self.problem(path + ("require-label",), f"require-label '{require_label}' is not a GitHub label name",
                         "use the label's name as shown on the pull request, at most 50 characters")
        routed = body.get("routes", True) is not False
        if "routes" in body and not isinstance(body["routes"], bool):
            self.problem(path + ("routes",), "'routes' of an environment must be false (no route) or left out",
                         "write 'routes: false' for an environment Cloudflare does not serve, e.g. a local cluster")
        return Environment(
            name=name, endpoint=endpoint, routes=routed, require_label=require_label, namespace=namespace or "",
            cluster=cluster, context=context,
            host=host,
            env=own_env, promote_from=promote_from, protected=protected, preview=preview,
            ttl=ttl, max=max_count, adopt=flag("adopt"), create_namespace=bool(create_ns),
            location=self.doc.at(path, key=True),
        )

    def builtin_references(self, name: str, own_env: Mapping[str, str], path: Path, has_host: bool,
                           preview: bool) -> None:
        """${ENVSHIP_HOST} needs a host and ${ENVSHIP_PR} a preview: report it here, where the line is known."""
        for key, value in {**self.top_env, **own_env}.items():
            here = path + ("env", key) if key in own_env else ("env", key)
            hints = {"ENVSHIP_HOST": "" if has_host else f"add 'host:' to '{name}', or set '{key}' in its own env",
                     "ENVSHIP_PR": "" if preview else f"only preview environments have a pull request number; "
                                                      f"set '{key}' in the env of '{name}'"}
            for ref in _REFERENCE.findall(value):
                if hints.get(ref):
                    self.problem(here, f"variable '{key}' refers to ${{{ref}}}, which environment '{name}' "
                                       "does not have", hints[ref])

    def endpoint(self, body: Mapping[str, Any], path: Path, cluster: str | None) -> str:
        value = self.typed(body, path, "endpoint", str, "'public', 'private' or 'dns'")
        if value is None:
            return "public"
        if value not in GKE_ENDPOINTS:
            self.problem(path + ("endpoint",), f"unknown GKE endpoint '{value}'",
                         did_you_mean(value, GKE_ENDPOINTS) or "use 'public', 'private' or 'dns'")
        elif "cluster" not in body:
            self.problem(path + ("endpoint",), "'endpoint' only applies to GKE clusters ('cluster:')",
                         "remove it; a kubeconfig context names its own server", key=True)
        return str(value)

    def target(self, body: Mapping[str, Any], path: Path, name: str) -> tuple[str | None, str | None]:
        cluster = self.typed(body, path, "cluster", str, "projects/P/locations/L/clusters/C")
        context = self.typed(body, path, "context", str, "a kubeconfig context name")
        if "cluster" in body and "context" in body:
            self.problem(path + ("context",), f"environment '{name}' sets both 'cluster' and 'context'",
                         "use 'cluster' for GKE or 'context' for a kubeconfig context, not both", key=True)
        elif "cluster" not in body and "context" not in body:
            self.problem(path, f"environment '{name}' sets neither 'cluster' nor 'context'",
                         "add 'cluster: projects/P/locations/L/clusters/C' (GKE) or 'context: NAME' (kubeconfig)",
                         key=True)
        if cluster is not None and not CLUSTER_RE.fullmatch(cluster):
            self.problem(path + ("cluster",), f"cluster '{cluster}' is not a GKE cluster name",
                         "write projects/PROJECT/locations/LOCATION/clusters/NAME: PROJECT a project ID (6-30 "
                         "lowercase letters, digits, hyphens), number or domain-scoped ID (example.com:proj), "
                         "LOCATION a region or zone (us-central1, europe-west4-b), NAME the cluster's name")
        if context is not None and not context.strip():
            self.problem(path + ("context",), "context must not be empty", "name a context from your kubeconfig")
        return cluster, context

    def templated(self, body: Mapping[str, Any], path: Path, key: str, name: str, preview: bool,
                  default: str | None) -> str | None:
        value = self.typed(body, path, key, str, "a string")
        if value is None:
            return default if key not in body else None
        here = path + (key,)
        for ph in placeholders(value):
            if ph not in PREVIEW_PLACEHOLDERS:
                self.problem(here, f"unknown placeholder '{{{ph}}}' in {key}", "the only placeholder is {pr}")
            elif not preview:
                self.problem(here, f"'{{{ph}}}' is used in {key} of '{name}', which is not a preview environment",
                             "add 'preview: true' to this environment, or remove {pr}")
        if preview and "{pr}" not in value:
            self.problem(here, f"{key} '{value}' of preview environment '{name}' does not contain {{pr}}",
                         f"every pull request needs its own {key}, e.g. '{value.split('.')[0]}-pr-{{pr}}'")
        sample = expand_placeholders(value, {"pr": SAMPLE_PR})
        if key == "namespace" and not is_dns_label(sample):
            self.problem(here, f"namespace '{value}' is not a DNS-1123 label",
                         "use at most 63 lowercase letters, digits and '-'")
        if key == "host" and not _valid_host(sample):
            self.problem(here, f"host '{value}' is not a valid hostname",
                         "write a name like staging.example.com, without scheme, port or path")
        return str(value)

    def preview_limits(self, body: Mapping[str, Any], path: Path, name: str,
                       preview: bool) -> tuple[timedelta | None, int | None]:
        ttl_text = self.typed(body, path, "ttl", str, "a duration such as 72h")
        ttl = None
        if ttl_text is not None:
            ttl = parse_duration(ttl_text)
            if ttl is None:
                self.problem(path + ("ttl",), f"ttl '{ttl_text}' is not a duration of at most 3650 days",
                             "write a positive duration like 72h, 7d, 1h30m or 45m")
        max_count = self.typed(body, path, "max", int, "a whole number")
        if max_count is not None and max_count < 1:
            self.problem(path + ("max",), f"max must be at least 1, not {max_count}",
                         "allow at least one preview, e.g. 'max: 10', or remove 'max'")
        for key in ("ttl", "max"):
            if key in body and not preview:
                self.problem(path + (key,), f"'{key}' only applies to preview environments",
                             "add 'preview: true' to this environment, or remove it", key=True)
        return ttl, max_count

    def promotions(self, raw: Mapping[str, Any], envs: Mapping[str, Environment]) -> None:
        for env in envs.values():
            source = env.promote_from
            if source is None:
                continue
            here: Path = ("environments", env.name, "promote-from")
            if source == env.name:
                self.problem(here, f"environment '{env.name}' cannot promote from itself",
                             "name another environment, e.g. 'promote-from: staging'")
            elif source not in raw:
                self.problem(here, f"promote-from names unknown environment '{source}'",
                             did_you_mean(source, raw) or f"known environments: {', '.join(map(str, raw))}")
            elif source in envs and envs[source].preview:
                self.problem(here, f"environment '{env.name}' cannot promote from preview environment '{source}'",
                             "promote from a long-lived environment such as staging")
            elif env.preview:
                self.problem(here, "a preview environment cannot have 'promote-from'",
                             "previews deploy the pull request's own build", key=True)
            elif _promotion_cycle(env.name, envs):
                self.problem(here, f"promote-from of '{env.name}' forms a cycle",
                             "promotions must flow one way, e.g. staging -> production")


def _promotion_cycle(start: str, envs: Mapping[str, Environment]) -> bool:
    seen, current = {start}, envs[start].promote_from
    while current is not None and current in envs:
        if current in seen:
            return True
        seen.add(current)
        current = envs[current].promote_from
    return False


def _default_namespace(app: str, env: str, preview: bool) -> str:
    return f"{app}-pr-{{pr}}" if preview else f"{app}-{env}"


def _valid_host(text: str) -> bool:
    if not text or len(text) > 253 or text.endswith("."):
        return False
    labels = text.split(".")
    return len(labels) >= 2 and all(len(lab) <= 63 and HOST_LABEL.fullmatch(lab) for lab in labels)


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in_zone(host: str, zone: str) -> bool:
    return host == zone or host.endswith("." + zone)
