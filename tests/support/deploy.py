"""The deployment files as the tests read them: kustomizations rendered by the real kustomize
(``kubectl kustomize``, kustomize v5 inside kubectl), the Dockerfile's instructions, .dockerignore,
the README's settings table, and each workload's pod."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import yaml

from core.config import PROJECT_ROOT
from tests.conftest import missing_service

DEPLOY = PROJECT_ROOT / "deploy"
KUSTOMIZATIONS = ("base", "overlays/example", "gpu-cluster")
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
SETTINGS_MAP = "computeloop-settings"
WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")


# --- tools ------------------------------------------------------------------------------------------

def tool(name: str, hint: str) -> str:
    """The path of a command-line tool (the venv's bin first, then PATH); fails (CI) or skips when absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        missing_service(f"{name} ({hint})")
    return found  # type: ignore[return-value]


@lru_cache(maxsize=None)
def _render(path: str) -> str:
    kubectl = tool("kubectl", "kubectl kustomize renders the manifests; the machine image ships kubectl")
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY / path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def render(path: str) -> list[dict[str, Any]]:
    """The objects of ``deploy/<path>`` as ``kubectl apply -k`` would send them (fresh copies)."""
    return [d for d in yaml.safe_load_all(_render(path)) if d]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The objects of ``kind`` (and ``name``, ignoring a generated hash suffix)."""
    return [o for o in objects if o["kind"] == kind
            and (name is None or re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"]) == name)]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a Deployment, Job or CronJob."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    template = obj["spec"]["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else obj["spec"]["template"]
    return template["metadata"]["labels"]


def workloads(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every object that runs the image."""
    return (o for o in objects if o["kind"] in WORKLOAD_KINDS)


def env_sources(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """Each environment variable the manifests give ``container`` → where it comes from, as the
    README writes it: ``ConfigMap computeloop-settings`` or ``Secret <name> key <key>``."""
    out: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        name = source["configMapRef"]["name"]
        (cm,) = find(objects, "ConfigMap", name)
        out.update({key: f"ConfigMap {name}" for key in cm["data"]})
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        out[item["name"]] = f"Secret {ref['name']} key {ref['key']}" if ref else "value"
    return out


# --- Dockerfile ---------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order: continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def dockerfile_env() -> dict[str, str]:
    """The ENV variables of the final stage (``KEY=value`` form)."""
    stages = [i for i, (word, _) in enumerate(dockerfile()) if word == "FROM"]
    env: dict[str, str] = {}
    for word, rest in dockerfile()[stages[-1]:]:
        if word == "ENV":
            for m in re.finditer(r"(\w+)=(\S+)", rest):
                env[m.group(1)] = m.group(2)
    return env


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form instruction (CMD, HEALTHCHECK ... CMD, VOLUME)."""
    return json.loads(arguments[arguments.index("["):])


def dockerignore_includes(path: str) -> bool:
    """Whether ``path`` (relative, '/'-separated) goes into the build context under .dockerignore:
    Docker's rule — the last pattern that matches the path or one of its parent folders decides;
    ``!`` re-includes; ``**`` matches any number of folders."""
    patterns = [p.strip() for p in (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if p.strip() and not p.strip().startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    included = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        regex = "^" + re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        if any(re.match(regex, prefix) for prefix in prefixes):
            included = negate
    return included


# --- README ---------------------------------------------------------------------------------------------

def readme_section(title: str) -> str:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, f"README has no section {title}"
    return m.group(1)


def settings_table() -> list[dict[str, str]]:
    """The rows of the Configuration section's table, keyed by its header cells; every backquoted
    variable in a row's first cell is a row of its own."""
    lines = [ln for ln in readme_section("Configuration").splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        row = dict(zip(header, cells))
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            rows.append({**row, "variable": name})
    return rows


def readme_commands() -> list[tuple[str, str]]:
    """``(command, its comment)`` of each ``python -m core …`` line of the README's Command line
    block; a comment continued on the next lines is joined."""
    block = re.search(r"```\n(.*?)```", readme_section("Command line"), re.S).group(1)
    out: list[list[str]] = []
    for line in block.splitlines():
        if line.startswith("python -m core "):
            command, _, comment = line.partition("#")
            out.append([command.strip(), comment.strip()])
        elif out and line.strip().startswith("#"):
            out[-1][1] += " " + line.strip().lstrip("#").strip()
    return [(c, k) for c, k in out]


def secret_names_in(text: str) -> set[str]:
    """The Secret names a text tells the operator to create (``kubectl ... create secret <type> <name>``)."""
    return set(re.findall(r"create secret (?:generic|tls) ([a-z0-9-]+)", text))
