"""Settings from the environment only, in one table: the README's Configuration table, core/config.py
SETTINGS, the variables the code reads, the Dockerfile's ENV and the Kubernetes manifests name the
same variables, and the table says truly which ConfigMap or Secret key feeds each one."""

from __future__ import annotations

import re

import pytest

from core.config import PROJECT_ROOT, SETTINGS
from core.i18n import LANGS, catalog
from tests.support.deploy import (
    SETTINGS_MAP, dockerfile_env, env_sources, find, pod_spec, render, settings_table, workloads,
)

TEST_ONLY = re.compile(r"^COMPUTELOOP_TEST_")
SETTING_NAMES = {s.env for s in SETTINGS if not TEST_ONLY.match(s.env)}
# Where the code may read a variable: everything the image runs.
CODE = [PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "core").rglob("*.py"), *(PROJECT_ROOT / "ui").rglob("*.py"),
        *(PROJECT_ROOT / "app_pages").rglob("*.py")]
_FED_BY = re.compile(r"^(ConfigMap|Secret) `([a-z0-9-]+)`(?: key `([^`]+)`)?")


def table() -> dict[str, dict[str, str]]:
    rows = settings_table()
    names = [r["variable"] for r in rows]
    assert len(names) == len(set(names)), f"a variable has two rows: {sorted(n for n in names if names.count(n) > 1)}"
    return {r["variable"]: r for r in rows}


def fed_by(cell: str) -> str:
    """``ConfigMap <name>`` / ``Secret <name> key <key>`` / ``image`` from a table cell."""
    if cell.startswith("image (Dockerfile)"):
        return "image"
    m = _FED_BY.match(cell)
    assert m, f"'{cell}' names neither a ConfigMap, a Secret key nor the image"
    return f"ConfigMap {m[2]}" if m[1] == "ConfigMap" else f"Secret {m[2]} key {m[3]}"


def test_every_variable_the_code_reads_is_a_documented_setting():
    read = set()
    for path in CODE:
        read |= set(re.findall(r"COMPUTELOOP_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")))
    read = {name for name in read if not TEST_ONLY.match(name)}
    assert read, "the scan found no variable at all"
    assert read - SETTING_NAMES == set(), "read by the code but missing from core/config.py SETTINGS"


def test_the_readme_table_names_every_setting_and_every_variable_the_image_sets():
    rows = table()
    image_env = set(dockerfile_env())
    assert image_env, "the Dockerfile's final stage sets no ENV"
    assert set(rows) == SETTING_NAMES | image_env
    for name in image_env - SETTING_NAMES:
        assert fed_by(rows[name]["in deploy/"]) == "image", name


def test_the_table_gives_the_code_default_and_the_image_value():
    rows = table()
    image_env = dockerfile_env()
    for s in SETTINGS:
        cell = rows[s.env]["default"]
        default = s.default.replace(f"{PROJECT_ROOT}/", "")
        if default:
            assert default in cell.replace("`", ""), f"{s.env}: the table's default '{cell}' is not {default!r}"
        else:
            assert "empty" in cell, f"{s.env}: the default is empty, the table says '{cell}'"
    for name, value in image_env.items():
        shown = rows[name]["default"].replace("`", "")
        assert "image:" in shown, f"{name}: the table does not give the image's value"
        expected = value.replace(":$PATH", "")  # PATH extends the base image's
        assert expected in shown, f"{name}: the image sets {value!r}, the table says '{shown}'"


@pytest.fixture(scope="module")
def base():
    return render("base")


def test_the_manifests_feed_every_setting_where_the_table_says(base):
    (settings,) = find(base, "ConfigMap", SETTINGS_MAP)
    assert set(settings["data"]) <= SETTING_NAMES, "a ConfigMap key that is no setting"
    fed: dict[str, set[str]] = {}
    for obj in workloads(base):
        for container in pod_spec(obj)["containers"]:
            for name, source in env_sources(container, base).items():
                fed.setdefault(name, set()).add(source)
    assert set(fed) == SETTING_NAMES, "the manifests and core/config.py name different variables"
    rows = table()
    for name, sources in fed.items():
        assert sources == {fed_by(rows[name]["in deploy/"])}, f"{name}: manifests {sources}, README {rows[name]['in deploy/']}"


def test_no_secret_setting_is_a_plain_value_in_the_manifests(base):
    (settings,) = find(base, "ConfigMap", SETTINGS_MAP)
    secret_words = ("PASSWORD", "SECRET", "TOKEN", "KEY")
    secret_settings = {n for n in SETTING_NAMES if any(w in n for w in secret_words)}
    assert secret_settings, "no setting looks secret: the check would prove nothing"
    assert not secret_settings & set(settings["data"])
    for obj in workloads(base):
        for container in pod_spec(obj)["containers"]:
            for item in container.get("env") or []:
                assert "value" not in item or item["name"] not in secret_settings | {"COMPUTELOOP_DATABASE_URL"}


@pytest.mark.parametrize("lang", LANGS)
def test_every_setting_has_its_help_text_in_the_catalogs(lang):
    """The Settings page translates each setting's help (``setting.<VARIABLE>``)."""
    assert {f"setting.{n}" for n in SETTING_NAMES} - set(catalog(lang)) == set()
