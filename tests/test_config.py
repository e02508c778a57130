"""envship.yaml validation: every mistake is reported with file:line:col and a hint, all at once, exit 2.

Each case writes a config into a fresh project, runs `envship render`, and checks the exit code, the
message, the location (computed from the YAML text by finding a marker) and the hint.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from conftest import BASE_CONFIG, DEPLOYMENT, IMAGE, Project, location_of, run

HEAD = "app: hello\nimage: ghcr.io/acme/hello\nmanifests: deploy\n"
STAGING = "environments:\n  staging:\n    context: kind-dev\n"


@dataclass(frozen=True)
class Bad:
    text: str | None          # None: no config file at all
    message: str              # substring of the error line
    marker: str | None        # where the problem is reported (first character of the marker)
    hint: str = ""            # substring of the hint line ('' = any non-empty hint)
    occurrence: int = 1       # which occurrence of the marker
    env: str = "staging"


def env_block(body: str, name: str = "staging") -> str:
    """`environments:` with one environment whose body lines are given without indentation."""
    lines = "".join(f"    {line}\n" for line in body.strip("\n").split("\n"))
    return f"environments:\n  {name}:\n{lines}"


TUNNEL_ROUTES = ("routes:\n  cloudflare:\n    zone: example.com\n    mode: tunnel\n"
                 "    tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n")

CASES = {
    # -- unknown keys, with "did you mean" -------------------------------------------------------
    "unknown-top-level-key": Bad(
        HEAD + "enviroments:\n  staging:\n    context: kind-dev\n",
        "unknown key 'enviroments' in the config", "enviroments", "did you mean 'environments'?"),
    "unknown-environment-key": Bad(
        HEAD + env_block("context: kind-dev\nnamspace: hello-staging"),
        "unknown key 'namspace' in environment 'staging'", "namspace", "did you mean 'namespace'?"),
    "unknown-routes-provider": Bad(
        HEAD + STAGING + "routes:\n  cloudfare:\n    zone: example.com\n",
        "unknown key 'cloudfare' in routes", "cloudfare", "did you mean 'cloudflare'?"),
    "unknown-cloudflare-key": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n    targt: ingress\n",
        "unknown key 'targt' in routes.cloudflare", "targt", "did you mean 'target'?"),
    # -- wrong types ----------------------------------------------------------------------------
    "app-not-a-string": Bad(
        "app: [hello]\nimage: ghcr.io/acme/hello\n" + STAGING,
        "'app' must be a string, not a list", "[hello]"),
    "environments-not-a-mapping": Bad(
        HEAD + "environments: [staging, production]\n",
        "'environments' must be a mapping of environment names, not a list", "[staging"),
    "protected-not-a-boolean": Bad(
        HEAD + env_block('context: kind-dev\nprotected: "yes"'),
        "'protected' must be true or false, not a string", '"yes"'),
    "max-not-a-number": Bad(
        HEAD + env_block("preview: true\ncontext: kind-dev\nnamespace: hello-pr-{pr}\nmax: ten", "preview"),
        "'max' must be a whole number, not a string", "ten", env="preview"),
    "env-not-a-mapping": Bad(
        HEAD + "env: [LOG_LEVEL=info]\n" + STAGING,
        "'env' must be a mapping of NAME: value, not a list", "[LOG_LEVEL"),
    "manifests-not-a-string": Bad(
        "app: hello\nimage: ghcr.io/acme/hello\nmanifests: [deploy, more]\n" + STAGING,
        "'manifests' must be a path to a file or directory, not a list", "[deploy"),
    "environment-not-a-mapping": Bad(
        HEAD + "environments:\n  staging: kind-dev\n",
        "environment 'staging' must be a mapping, not a string", "kind-dev", "'context:' or 'cluster:'"),
    "adopt-not-a-boolean": Bad(
        HEAD + env_block("context: kind-dev\nadopt: 1"),
        "'adopt' must be true or false, not a number", "1"),
    # -- cluster / context ----------------------------------------------------------------------
    "cluster-and-context": Bad(
        HEAD + env_block("cluster: projects/acme-prod/locations/us-central1/clusters/main\ncontext: kind-dev"),
        "environment 'staging' sets both 'cluster' and 'context'", "context:", "not both"),
    "neither-cluster-nor-context": Bad(
        HEAD + env_block("namespace: hello-staging"),
        "environment 'staging' sets neither 'cluster' nor 'context'", "staging:", "context: NAME"),
    "cluster-not-a-gke-name": Bad(
        HEAD + env_block("cluster: gke_acme_us-central1_main"),
        "cluster 'gke_acme_us-central1_main' is not a GKE cluster name", "gke_acme",
        "projects/PROJECT/locations/LOCATION/clusters/NAME"),
    "empty-context": Bad(
        HEAD + env_block('context: ""'),
        "context must not be empty", '""', "kubeconfig"),
    # -- image ----------------------------------------------------------------------------------
    "image-with-tag": Bad(
        "app: hello\nimage: ghcr.io/acme/hello:1.0\n" + STAGING,
        "image 'ghcr.io/acme/hello:1.0' must be a repository without tag or digest", "ghcr.io/acme/hello:1.0",
        "write 'image: ghcr.io/acme/hello'"),
    "image-with-digest": Bad(
        "app: hello\nimage: ghcr.io/acme/hello@sha256:" + "a" * 64 + "\n" + STAGING,
        "must be a repository without tag or digest", "ghcr.io/acme/hello@", "the digest comes from the build job"),
    "image-invalid-reference": Bad(
        "app: hello\nimage: ghcr.io/Acme/hello\n" + STAGING,
        "repository path component 'Acme'", "ghcr.io/Acme", "repository only"),
    # -- names ----------------------------------------------------------------------------------
    "app-not-a-dns-label": Bad(
        "app: Hello_World\nimage: ghcr.io/acme/hello\n" + STAGING,
        "app 'Hello_World' is not a DNS-1123 label", "Hello_World", "lowercase"),
    "app-too-long": Bad(
        f"app: {'a' * 64}\nimage: ghcr.io/acme/hello\n" + STAGING,
        "is not a DNS-1123 label", "aaaa", "at most 63"),
    "namespace-not-a-dns-label": Bad(
        HEAD + env_block("context: kind-dev\nnamespace: Hello.Staging"),
        "namespace 'Hello.Staging' is not a DNS-1123 label", "Hello.Staging", "lowercase"),
    "environment-name-not-a-dns-label": Bad(
        HEAD + env_block("context: kind-dev", "Staging_EU"),
        "environment name 'Staging_EU' is not a DNS-1123 label", "Staging_EU", "lowercase"),
    "host-not-a-hostname": Bad(
        HEAD + env_block("context: kind-dev\nhost: https://staging.example.com/"),
        "host 'https://staging.example.com/' is not a valid hostname", "https://", "without scheme"),
    # -- placeholders ---------------------------------------------------------------------------
    "pr-outside-preview": Bad(
        HEAD + env_block("context: kind-dev\nnamespace: hello-pr-{pr}"),
        "'{pr}' is used in namespace of 'staging', which is not a preview environment", "hello-pr-{pr}",
        "preview: true"),
    "preview-namespace-without-pr": Bad(
        HEAD + env_block("preview: true\ncontext: kind-dev\nnamespace: hello-preview", "preview"),
        "namespace 'hello-preview' of preview environment 'preview' does not contain {pr}", "hello-preview",
        "hello-preview-pr-{pr}", env="preview"),
    "unknown-placeholder": Bad(
        HEAD + env_block("context: kind-dev\nhost: '{branch}.example.com'"),
        "unknown placeholder '{branch}' in host", "'{branch}", "the only placeholder is {pr}"),
    # -- promotions -----------------------------------------------------------------------------
    "unknown-promote-from": Bad(
        HEAD + STAGING + "  production:\n    context: kind-prod\n    promote-from: stagin\n",
        "promote-from names unknown environment 'stagin'", "stagin\n", "did you mean 'staging'?"),
    "promote-from-itself": Bad(
        HEAD + STAGING + "  production:\n    context: kind-prod\n    promote-from: production\n",
        "environment 'production' cannot promote from itself", "production\n", "another environment"),
    "promotion-cycle": Bad(
        HEAD + "environments:\n  staging:\n    context: kind-dev\n    promote-from: production\n"
        "  production:\n    context: kind-prod\n    promote-from: staging\n",
        "promote-from of 'staging' forms a cycle", "production\n", "one way"),
    "promote-from-a-preview": Bad(
        HEAD + STAGING + "  preview:\n    preview: true\n    context: kind-dev\n"
        "  production:\n    context: kind-prod\n    promote-from: preview\n",
        "environment 'production' cannot promote from preview environment 'preview'", "preview\n",
        "long-lived"),
    "preview-with-promote-from": Bad(
        HEAD + STAGING + "  preview:\n    preview: true\n    context: kind-dev\n    promote-from: staging\n",
        "a preview environment cannot have 'promote-from'", "promote-from", "pull request's own build"),
    # -- preview limits -------------------------------------------------------------------------
    "ttl-not-a-duration": Bad(
        HEAD + env_block("preview: true\ncontext: kind-dev\nttl: 3 days", "preview"),
        "ttl '3 days' is not a duration", "3 days", "72h", env="preview"),
    "ttl-too-long": Bad(
        HEAD + env_block("preview: true\ncontext: kind-dev\nttl: 99999999999d", "preview"),
        "ttl '99999999999d' is not a duration of at most 3650 days", "99999999999d", "72h", env="preview"),
    "cluster-with-too-short-project": Bad(
        HEAD + env_block("cluster: projects/acme/locations/us-central1/clusters/main"),
        "cluster 'projects/acme/locations/us-central1/clusters/main' is not a GKE cluster name", "projects/acme",
        "a project ID (6-30"),
    "cluster-with-bad-location": Bad(
        HEAD + env_block("cluster: projects/acme-prod/locations/moon/clusters/main"),
        "is not a GKE cluster name", "projects/acme-prod", "a region or zone"),
    "ttl-zero": Bad(
        HEAD + env_block("preview: true\ncontext: kind-dev\nttl: 0h", "preview"),
        "ttl '0h' is not a duration", "0h", "positive", env="preview"),
    "ttl-on-non-preview": Bad(
        HEAD + env_block("context: kind-dev\nttl: 72h"),
        "'ttl' only applies to preview environments", "ttl", "preview: true"),
    "max-zero": Bad(
        HEAD + env_block("preview: true\ncontext: kind-dev\nmax: 0", "preview"),
        "max must be at least 1, not 0", "0\n", env="preview"),
    "protected-preview": Bad(
        HEAD + env_block("preview: true\nprotected: true\ncontext: kind-dev", "preview"),
        "preview environment 'preview' cannot be protected", "protected", "remove 'protected'", env="preview"),
    # -- whole-file problems --------------------------------------------------------------------
    "no-environments": Bad(
        HEAD + "environments: {}\n",
        "no environments are defined", "{}", "add at least one"),
    "missing-app": Bad(
        "image: ghcr.io/acme/hello\n" + STAGING,
        "missing required key 'app'", "image", "app: my-app"),
    "duplicate-keys": Bad(
        HEAD + env_block("context: kind-dev\nnamespace: a\nnamespace: b"),
        "key 'namespace' appears twice in the same mapping", "namespace", "keeps only the last", occurrence=2),
    "invalid-yaml-syntax": Bad(
        "app: hello\nimage: ghcr.io/acme/hello\n  manifests: deploy\n" + STAGING,
        "invalid YAML: mapping values are not allowed", ": deploy", "indentation"),
    "unclosed-flow-sequence": Bad(
        "app: hello\nimage: [ghcr.io/acme/hello\nmanifests: deploy\n",
        "invalid YAML: while parsing a flow sequence", ": deploy", "indentation"),
    "complex-key": Bad(
        HEAD + "[a, b]: c\n" + STAGING,
        "a mapping key must be a plain value, not a list or mapping", "[a, b]", "plain name"),
    "control-character": Bad(
        HEAD + STAGING.replace("kind-dev", "kind-\x00dev"),
        "invalid YAML: character U+0000 is not allowed", "\x00", "printable"),
    "root-not-a-mapping": Bad(
        "- app: hello\n- image: ghcr.io/acme/hello\n",
        "the config must be a mapping, not a list", "- app", "app: NAME"),
    "multiple-documents": Bad(
        HEAD + STAGING + "---\napp: other\n",
        "expected exactly one YAML document, found 2", "app: other", "one mapping"),
    "empty-file": Bad(
        "", "expected exactly one YAML document, found 0", "", "one mapping"),
    "missing-config-file": Bad(
        None, "config file envship.yaml not found", None, "set --config to its path"),
    # -- variables ------------------------------------------------------------------------------
    "reserved-variable": Bad(
        HEAD + "env:\n  ENVSHIP_MODE: fast\n" + STAGING,
        "variable name 'ENVSHIP_MODE' is reserved", "ENVSHIP_MODE", "set by envship"),
    "invalid-variable-name": Bad(
        HEAD + "env:\n  1ST_VALUE: x\n" + STAGING,
        "variable name '1ST_VALUE' is not a valid environment variable name", "1ST_VALUE", "not starting with a digit"),
    "variable-value-mapping": Bad(
        HEAD + "env:\n  DATABASE: {host: db, port: 5432}\n" + STAGING,
        "variable 'DATABASE' must be a string, number or boolean, not a mapping", "{host", "quote the value"),
    "variable-value-null": Bad(
        HEAD + env_block("context: kind-dev\nenv:\n  EMPTY: null"),
        "variable 'EMPTY' must be a string, number or boolean, not nothing (null)", "null", '""'),
    "variable-unknown-reference": Bad(
        HEAD + "env:\n  URL: https://${HOST}/\n" + STAGING,
        "variable 'URL' refers to ${HOST}, which is not available here", "https://", "$${HOST}"),
    "host-variable-without-host": Bad(
        HEAD + "env:\n  PUBLIC_URL: https://${ENVSHIP_HOST}/\n" + STAGING,
        "variable 'PUBLIC_URL' refers to ${ENVSHIP_HOST}, which environment 'staging' does not have", "https://",
        "add 'host:' to 'staging'"),
    "pr-variable-outside-preview": Bad(
        HEAD + env_block("context: kind-dev\nenv:\n  BRANCH: pr-${ENVSHIP_PR}"),
        "variable 'BRANCH' refers to ${ENVSHIP_PR}, which environment 'staging' does not have", "pr-$",
        "only preview environments"),
    # -- routes ---------------------------------------------------------------------------------
    "tunnel-without-account": Bad(
        HEAD + STAGING + TUNNEL_ROUTES,
        "mode 'tunnel' needs 'account' in routes.cloudflare", "cloudflare:", "account id"),
    "host-outside-zone": Bad(
        HEAD + env_block("context: kind-dev\nhost: staging.example.org")
        + "routes:\n  cloudflare:\n    zone: example.com\n",
        "host 'staging.example.org' is not inside the Cloudflare zone 'example.com'", "staging.example.org",
        "ending in .example.com"),
    "unknown-cloudflare-mode": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n    mode: tunel\n",
        "unknown mode 'tunel'", "tunel", "did you mean 'tunnel'?"),
    "unknown-gke-endpoint": Bad(
        HEAD + env_block("cluster: projects/acme-prod/locations/us-central1/clusters/main\nendpoint: privat"),
        "unknown GKE endpoint 'privat'", "privat", "did you mean 'private'?"),
    "endpoint-with-context": Bad(
        HEAD + env_block("context: kind-dev\nendpoint: dns"),
        "'endpoint' only applies to GKE clusters", "endpoint", "a kubeconfig context names its own server"),
    "tunnel-key-in-dns-mode": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n    tunnel: abc\n",
        "'tunnel' is only used with mode 'tunnel'", "tunnel:", "mode: tunnel"),
    "cloudflare-without-zone": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    mode: dns\n",
        "missing required key 'zone' in routes.cloudflare", "mode:", "zone: example.com"),
    "cloudflare-bad-zone": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: localhost\n",
        "zone 'localhost' is not a valid domain name", "localhost"),
    "tunnel-without-service": Bad(
        HEAD + STAGING + TUNNEL_ROUTES + "    account: 0123456789abcdef0123456789abcdef\n",
        "mode 'tunnel' needs 'service' in routes.cloudflare", "cloudflare:", "{namespace}.svc.cluster.local"),
    "tunnel-bad-account": Bad(
        HEAD + STAGING + TUNNEL_ROUTES + "    account: my-account\n    service: http://web:80\n",
        "account 'my-account' is not a Cloudflare account id", "my-account", "32-hexadecimal-digit"),
    "tunnel-bad-service": Bad(
        HEAD + STAGING + TUNNEL_ROUTES + "    account: 0123456789abcdef0123456789abcdef\n    service: web:80\n",
        "service 'web:80' is not an address cloudflared can forward to", "web:80", "http_status:404"),
    "tunnel-service-placeholder": Bad(
        HEAD + STAGING + TUNNEL_ROUTES + "    account: 0123456789abcdef0123456789abcdef\n"
        "    service: http://web.{ns}:80\n",
        "unknown placeholder '{ns}' in service", "http://web.{ns}", "{namespace} and {pr}"),
    "smoke-check-bad-status": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n  smoke-check:\n    status: 1000\n",
        "status 1000 is not an HTTP status code", "1000"),
    "smoke-check-long-timeout": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n  smoke-check:\n    timeout: 2h\n",
        "timeout '2h' is not a duration of at most 30m", "2h"),
    "smoke-check-unknown-key": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n  smoke-check:\n    expect: 200\n",
        "unknown key 'expect' in routes.smoke-check", "expect", "allowed keys"),
    "routes-not-false": Bad(
        HEAD + env_block("context: kind-dev\nroutes: off-please"),
        "'routes' of an environment must be false (no route) or left out", "off-please", "routes: false"),
    "lock-namespace-in-dns-mode": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n    lock-namespace: ops\n",
        "'lock-namespace' is only used with mode 'tunnel'", "lock-namespace", "mode: tunnel"),
    "cloudflare-bad-target": Bad(
        HEAD + STAGING + "routes:\n  cloudflare:\n    zone: example.com\n    target: not a host\n",
        "target 'not a host' is not 'ingress', an IP address or a hostname", "not a host"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_config(project: Project, case: Bad) -> None:
    project.manifest("deployment.yaml", DEPLOYMENT)
    if case.text is not None:
        project.config(case.text)
    result = project.render(env=case.env)

    assert result.code == 2, result.err
    assert result.out == ""
    assert "Traceback" not in result.err
    line, hint = result.problem(case.message)
    if case.marker is None:
        assert line.startswith("error: ") and "envship.yaml" in line
    else:
        row, col = location_of(case.text or "", case.marker, case.occurrence) if case.marker else (1, 1)
        assert line.startswith(f"error: envship.yaml:{row}:{col}: "), line
    assert hint.startswith("hint: ") and len(hint) > len("hint: "), f"no hint for: {line}"
    assert case.hint in hint


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_all_problems_reported_in_one_run(project: Project) -> None:
    text = (
        "app: Hello\n"
        "image: ghcr.io/acme/hello:2\n"
        "enviroments: {}\n"
        "environments:\n"
        "  staging:\n"
        "    cluster: projects/acme-prod/locations/us-central1/clusters/main\n"
        "    context: kind-dev\n"
        "    namespace: hello-pr-{pr}\n"
        "    ttl: 3 days\n"
        "  production:\n"
        "    context: kind-prod\n"
        "    promote-from: stagin\n"
        "  preview:\n"
        "    preview: true\n"
        "    protected: true\n"
        "    namespace: hello-preview\n"
    )
    project.config(text)
    project.manifest("deployment.yaml", DEPLOYMENT)
    result = project.render()

    assert result.code == 2
    expected = [
        ("app 'Hello' is not a DNS-1123 label", "Hello"),
        ("must be a repository without tag or digest", "ghcr.io/acme/hello:2"),
        ("unknown key 'enviroments'", "enviroments"),
        ("sets both 'cluster' and 'context'", "context:"),
        ("'{pr}' is used in namespace of 'staging'", "hello-pr-{pr}"),
        ("ttl '3 days' is not a duration", "3 days"),
        ("'ttl' only applies to preview environments", "ttl:"),
        ("promote-from names unknown environment 'stagin'", "stagin\n"),
        ("preview environment 'preview' cannot be protected", "protected:"),
        ("namespace 'hello-preview' of preview environment 'preview' does not contain {pr}", "hello-preview"),
        ("environment 'preview' sets neither 'cluster' nor 'context'", "preview:\n"),
    ]
    for message, marker in expected:
        line, hint = result.problem(message)
        row, col = location_of(text, marker)
        assert line.startswith(f"error: envship.yaml:{row}:{col}: "), line
        assert hint.startswith("hint: ")
    assert result.err.count("error: ") == len(expected)


def test_problems_are_listed_in_file_order_for_one_mapping(project: Project) -> None:
    """Unknown keys of one environment come out in the order the user wrote them."""
    project.config(HEAD + env_block("context: kind-dev\nnamspace: x\nhots: y\nenvv: {}"))
    project.manifest("deployment.yaml", DEPLOYMENT)
    result = project.render()
    assert result.code == 2
    keys = [line.split("unknown key '")[1].split("'")[0] for line in result.err.splitlines() if "unknown key" in line]
    assert keys == ["namspace", "hots", "envv"]
    assert "did you mean 'host'?" in result.err and "did you mean 'env'?" in result.err


def test_valid_config_with_every_feature_renders(project: Project) -> None:
    """The positive control for the matrix: the base config (used by the other suites) is valid."""
    project.config(BASE_CONFIG + "    mode: dns\n    target: 203.0.113.7\n")
    project.manifest("deployment.yaml", DEPLOYMENT)
    for env, extra in (("staging", ()), ("production", ()), ("preview", ("--pr", "3"))):
        result = project.render(*extra, env=env)
        assert result.code == 0, result.err
        assert result.err == ""


def test_ttl_formats_accepted(project: Project) -> None:
    for ttl in ("72h", "7d", "1h30m", "45m", "90s", "1d12h"):
        project.config(BASE_CONFIG.replace("ttl: 72h", f"ttl: {ttl}"))
        project.manifest("deployment.yaml", DEPLOYMENT)
        assert project.render("--pr", "1", env="preview").code == 0, ttl


def test_config_from_envship_config_variable(project: Project) -> None:
    """Without --config, $ENVSHIP_CONFIG names the file; errors point into that file."""
    project.write("ops/envship.yaml", "app: hello\nimage: ghcr.io/acme/hello:1\n" + STAGING)
    result = run(["render", "--env", "staging", "--image", IMAGE],
                 {"ENVSHIP_CONFIG": "ops/envship.yaml", "SOURCE_DATE_EPOCH": "1"})
    assert result.code == 2
    line, _ = result.problem("must be a repository without tag or digest")
    assert line.startswith("error: ops/envship.yaml:2:8: ")


def test_yaml_anchors_and_merge_keys_share_settings(project: Project) -> None:
    """`<<: *base` then overriding keys is ordinary YAML, not a duplicate key."""
    project.config(HEAD + (
        "environments:\n"
        "  staging: &gke\n"
        "    cluster: projects/acme-prod/locations/us-central1/clusters/main\n"
        "    namespace: hello-staging\n"
        "    env: {LOG_LEVEL: debug}\n"
        "  production:\n"
        "    <<: *gke\n"
        "    namespace: hello\n"
        "    env: {LOG_LEVEL: info}\n"
    ))
    project.manifest("deployment.yaml", DEPLOYMENT.replace("https://${ENVSHIP_HOST}", "${LOG_LEVEL}"))
    result = project.render(env="production")
    assert result.code == 0, result.err
    deployment = result.one("Deployment")
    assert deployment["metadata"]["namespace"] == "hello"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "info"
    # a key written twice by hand next to a merge is still a mistake
    project.config(HEAD + "environments:\n  staging: &s\n    context: a\n  production:\n    <<: *s\n"
                   "    context: b\n    context: c\n")
    result = project.render()
    assert result.code == 2
    line, _ = result.problem("key 'context' appears twice")
    assert line.startswith("error: envship.yaml:10:5: ")


def test_config_not_utf8(project: Project) -> None:
    project.manifest("deployment.yaml", DEPLOYMENT)
    (project.root / "envship.yaml").write_bytes(b"app: hello\nimage: ghcr.io/acme/hello\n# caf\xe9\n")
    result = project.render()
    assert result.code == 2
    line, hint = result.problem("the file is not UTF-8 text (byte 0xe9)")
    assert line.startswith("error: envship.yaml:3:6: ") and hint == "hint: save it as UTF-8"


@pytest.mark.parametrize("cluster", [
    "projects/acme-prod/locations/us-central1/clusters/main",
    "projects/123456789012/locations/europe-west4/clusters/prod",          # a project number
    "projects/example.com:acme-prod/locations/us-east1-b/clusters/prod-1",  # a domain-scoped project, a zone
    "projects/a23456789012345678901234567890/locations/asia-northeast1/clusters/" + "c" * 40,
])
def test_gke_cluster_names_gke_accepts(project: Project, cluster: str) -> None:
    project.config(HEAD + env_block(f"cluster: {cluster}\nhost: staging.example.com"))
    project.manifest("d.yaml", DEPLOYMENT)
    result = run(["render", "--config", "envship.yaml", "--env", "staging", "--image", IMAGE])
    assert result.code == 0, result.err


def test_the_readmes_config_example_is_valid() -> None:
    """The README's envship.yaml example, as written, passes validation."""
    from pathlib import Path

    from envship.core.config import parse_config

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Configuration: envship.yaml", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(block, "README.md")
    assert set(config.environments) == {"staging", "production", "preview"}
