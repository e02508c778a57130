"""kubeconfig handling with the official client's semantics: every mistake names the file, line and field
(exit 2) before anything is written anywhere (no temporary files either); auth-provider users are refused
with the plugin that replaces them; exec plugins get KUBERNETES_EXEC_INFO and may answer with a token or
a client certificate."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from conftest import Project
from fakes.kube_apiserver import FakeKube
from fakes.pytest_plugin import fake_kube  # noqa: F401 - the fixture
from test_deploy import CONFIG, DEPLOYMENT, IMAGE_A

from envship.cli import main

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN EC PRIVATE KEY-----\nMHcfake\n-----END EC PRIVATE KEY-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(cluster: str, user: str = "token: abc") -> str:
    """A kubeconfig with one cluster, user and context, all named fake; `cluster` starts on line 6 and
    `user` on line 10 (each of their lines indented under it)."""
    def block(text: str) -> str:
        return "".join(f"      {line}\n" for line in text.splitlines())

    return ("apiVersion: v1\nkind: Config\nclusters:\n  - name: fake\n    cluster:\n" + block(cluster)
            + "users:\n  - name: fake\n    user:\n" + block(user)
            + "contexts:\n  - name: fake\n    context: {cluster: fake, user: fake}\ncurrent-context: fake\n")


SERVER = "server: https://127.0.0.1:6443"
CASES = {
    "no-server": (kubeconfig("insecure-skip-tls-verify: true"), "cluster 'fake' has no server URL", 6,
                  "server: https://HOST"),
    "server-not-a-url": (kubeconfig("server: 127.0.0.1:6443"), "server '127.0.0.1:6443' is not an http(s) URL", 6,
                         "server: https://HOST"),
    "ca-data-not-base64": (kubeconfig(f"{SERVER}\ncertificate-authority-data: not*base64"),
                           "certificate-authority-data of 'fake' is not base64 of a PEM certificate", 7, "base64 -w0"),
    "ca-data-not-a-certificate": (kubeconfig(f"{SERVER}\ncertificate-authority-data: {b64('hello')}"),
                                  "is not base64 of a PEM certificate", 7, "regenerate"),
    "missing-ca-file": (kubeconfig(f"{SERVER}\ncertificate-authority: nowhere/ca.crt"),
                        "the certificate-authority file", 0, "relative paths are relative"),
    "missing-token-file": (kubeconfig(SERVER, "tokenFile: /nonexistent/token"), "the tokenFile file /nonexistent/token",
                           0, "fix the path"),
    "certificate-without-key": (kubeconfig(SERVER, f"client-certificate-data: {b64(PEM_CERT)}"),
                                "user 'fake' has a client certificate but no client-key(-data)", 10, "needs its key"),
    "auth-provider-gcp": (kubeconfig(SERVER, "auth-provider: {name: gcp, config: {}}"),
                          "user 'fake' uses auth-provider 'gcp', which Kubernetes clients removed in 1.26", 10,
                          "gke-gcloud-auth-plugin"),
    "exec-without-api-version": (kubeconfig(SERVER, "exec: {command: plugin}"),
                                 "exec.apiVersion None is not one of client.authentication.k8s.io/v1", 10,
                                 "apiVersion"),
    "exec-interactive": (kubeconfig(SERVER, "exec: {command: p, apiVersion: client.authentication.k8s.io/v1, "
                                            "interactiveMode: Always}"),
                         "the exec plugin needs a terminal (interactiveMode: Always)", 10, "unattended"),
    "context-names-missing-user": (kubeconfig(SERVER).replace("{cluster: fake, user: fake}",
                                                              "{cluster: fake, user: nobody}"),
                                   "context 'fake' names user 'nobody', which is not defined", 13, "add the user"),
    "a-list-not-a-mapping": ("- clusters: []\n", "the kubeconfig must be a mapping", 1, "regenerate"),
}


def private_folders() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("envship-")}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_kubeconfigs_name_file_line_and_field(project: Project, case: str) -> None:
    text, message, line, hint = CASES[case]
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    path = project.write("kube/config", text)
    before = private_folders()
    out, err = io.StringIO(), io.StringIO()
    code = main(["deploy", "--env", "staging", "--image", IMAGE_A, "--skip-image-check"],
                environ={"KUBECONFIG": str(path)}, out=out, err=err)
    assert code == 2, err.getvalue()
    first = err.getvalue().splitlines()[0]
    assert message in first and "Traceback" not in err.getvalue()
    if line:
        assert first.startswith(f"error: {path}:{line}:"), first
    assert hint in err.getvalue().splitlines()[1]
    assert private_folders() == before   # nothing written to the temp folder


def plugin(tmp_path: Path, status: dict[str, str]) -> Path:
    """An exec credential plugin that records what it was given and answers with `status`."""
    script = tmp_path / "plugin.py"
    script.write_text(textwrap.dedent(f"""\
        import json, os, sys
        with open({str(tmp_path / 'seen.json')!r}, "w") as f:
            json.dump({{"info": os.environ.get("KUBERNETES_EXEC_INFO"), "extra": os.environ.get("EXTRA"),
                        "args": sys.argv[1:]}}, f)
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                           "status": {json.dumps(status)}}}))
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def exec_user(script: Path, cluster_info: bool) -> str:
    return (f"exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {sys.executable}\n"
            f"  args: [{script}, --flag]\n  env: [{{name: EXTRA, value: from-kubeconfig}}]\n"
            f"  provideClusterInfo: {str(cluster_info).lower()}\n  interactiveMode: Never\n")


def test_an_exec_plugin_gets_kubernetes_exec_info_and_its_token_is_used(project: Project,
                                                                       fake_kube: FakeKube) -> None:  # noqa: F811
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    script = plugin(project.root, {"token": fake_kube.token or "", "expirationTimestamp": "2999-01-01T00:00:00Z"})
    path = project.write("kube/config", kubeconfig(f"server: {fake_kube.url}", exec_user(script, True)))
    err = io.StringIO()
    code = main(["plan", "--env", "staging", "--image", IMAGE_A, "--skip-image-check"],
                environ={"KUBECONFIG": str(path)}, out=io.StringIO(), err=err)
    assert code == 0, err.getvalue()
    seen = json.loads((project.root / "seen.json").read_text())
    info = json.loads(seen["info"])
    assert info == {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                    "spec": {"interactive": False, "cluster": {"server": fake_kube.url}}}
    assert seen["extra"] == "from-kubeconfig" and seen["args"] == ["--flag"]
    assert all(r.status != 401 for r in fake_kube.requests)   # the plugin's token was accepted


def test_an_exec_plugin_may_answer_with_a_client_certificate(project: Project, fake_kube: FakeKube) -> None:  # noqa: F811
    from envship.adapters.kube.kubeconfig import from_kubeconfig

    script = plugin(project.root, {"clientCertificateData": PEM_CERT, "clientKeyData": PEM_KEY})
    path = project.write("kube/config", kubeconfig(f"server: {fake_kube.url}", exec_user(script, False)))
    connection = from_kubeconfig("fake", {"KUBECONFIG": str(path)})
    assert connection.cert is not None and connection.token() is None
    cert, key = (Path(p) for p in connection.cert)
    assert cert.read_text() == PEM_CERT and key.read_text() == PEM_KEY
    assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o700   # the private folder
    assert "cluster" not in json.loads(json.loads((project.root / "seen.json").read_text())["info"])["spec"]


def test_credential_files_are_gone_when_the_process_ends(project: Project, fake_kube: FakeKube) -> None:  # noqa: F811
    """Inline CA and client certificates live in a private folder that is removed at exit."""
    path = project.write("kube/config", kubeconfig(
        f"server: {fake_kube.url}\ncertificate-authority-data: {b64(PEM_CERT)}",
        f"client-certificate-data: {b64(PEM_CERT)}\nclient-key-data: {b64(PEM_KEY)}"))
    code = ("import sys; sys.path.insert(0, 'entrypoint'); "
            "from envship.adapters.kube.kubeconfig import from_kubeconfig; "
            f"c = from_kubeconfig('fake', {{'KUBECONFIG': {str(path)!r}}}); print(c.verify, *c.cert)")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True, timeout=60, check=True)
    files = result.stdout.split()
    assert len(files) == 3 and all(f.startswith(tempfile.gettempdir()) for f in files)
    assert not any(os.path.exists(f) for f in files) and not os.path.exists(os.path.dirname(files[0]))


def test_the_entry_point_removes_credential_files_and_prints_everything(project: Project, tmp_path: Path,
                                                                         fake_kube: FakeKube) -> None:  # noqa: F811
    """`python -m envship deploy` ends without the interpreter's teardown (cli.exit_now): the private folder
    of inline credentials must still be removed and every line still reach the pipes."""
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    path = project.write("kube/config", kubeconfig(
        f"server: {fake_kube.url}\ncertificate-authority-data: {b64(PEM_CERT)}",
        f"client-certificate-data: {b64(PEM_CERT)}\nclient-key-data: {b64(PEM_KEY)}"))
    temp = tmp_path / "temp"
    temp.mkdir()
    environ = {"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(path), "TMPDIR": str(temp),
               "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "entrypoint")}
    result = subprocess.run([sys.executable, "-m", "envship", "deploy", "--env", "staging", "--image", IMAGE_A,
                             "--skip-image-check", "--timeout", "60s"], cwd=project.root, env=environ,
                            capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1].startswith("deployed ghcr.io/acme/hello@sha256:"), result.stderr
    assert fake_kube.get("deployments", "hello-staging", "web") is not None
    assert list(temp.iterdir()) == []   # the private folder was made (inline CA and key) and is gone


@pytest.mark.parametrize("script, message, hint", [
    (None, "the credential plugin /nonexistent/plugin of kubeconfig context 'fake' cannot run: FileNotFoundError",
     "install it"),
    ("import sys; print('token expired: run login again', file=sys.stderr); sys.exit(3)",
     "failed (exit 3): token expired: run login again", "install it"),
    ("print('not json')", "printed no ExecCredential JSON", "run the plugin by hand"),
    ("import json; print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'status': {}}))",
     "returned neither a token nor a client certificate and key", "run the plugin by hand"),
], ids=["missing", "fails", "not-json", "empty-status"])
def test_exec_plugin_failures_are_explained(project: Project, tmp_path: Path, script: str | None, message: str,
                                            hint: str) -> None:
    if script is None:
        command, args = "/nonexistent/plugin", "[]"
    else:
        (tmp_path / "p.py").write_text(script)
        command, args = sys.executable, f"[{tmp_path / 'p.py'}]"
    user = (f"exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: {command}\n  args: {args}\n"
            "  installHint: install it with your package manager\n")
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    path = project.write("kube/config", kubeconfig("server: https://127.0.0.1:1", user))
    err = io.StringIO()
    code = main(["deploy", "--env", "staging", "--image", IMAGE_A, "--skip-image-check"],
                environ={"KUBECONFIG": str(path)}, out=io.StringIO(), err=err)
    assert code == 1 and "Traceback" not in err.getvalue()
    lines = err.getvalue().splitlines()
    assert message in lines[0] and hint in lines[1], err.getvalue()


@pytest.mark.parametrize("text, message", [
    (None, "no kubeconfig found (looked at"),
    ("clusters: [unclosed\n", "the kubeconfig is not valid YAML"),
    ("# " + "x" * (4 * 1024 * 1024 + 1) + "\n", "the kubeconfig is larger than 4 MiB"),
], ids=["missing", "not-yaml", "too-large"])
def test_unreadable_kubeconfigs(project: Project, text: str | None, message: str) -> None:
    project.config(CONFIG)
    project.manifest("deployment.yaml", DEPLOYMENT)
    path = project.root / "kube" / "config"
    if text is not None:
        project.write("kube/config", text)
    err = io.StringIO()
    code = main(["deploy", "--env", "staging", "--image", IMAGE_A, "--skip-image-check"],
                environ={"KUBECONFIG": str(path)}, out=io.StringIO(), err=err)
    assert code == 2 and message in err.getvalue().splitlines()[0], err.getvalue()
