"""Every field an error names has a label in both languages (catalog domain ``fields``), so the
Chinese UI never shows an id such as ``donor_pool``; technical fields (files, CLI options, settings)
have none and are shown as they are, as code."""

from __future__ import annotations

import ast
import re
from dataclasses import fields

import pytest

from core.config import PROJECT_ROOT
from core.i18n import FIELD_NAME_PREFIX, LANGS, catalog, field_name, has_key
from core.lifecycle.forms import IntakeForm
from core.lifecycle.rules import load_required_fields

CORE_FILES = sorted((PROJECT_ROOT / "core").rglob("*.py"))
SNAKE = re.compile(r"[a-z][a-z0-9_]*")


def _technical(name: str) -> bool:
    """A file (org.yaml, data/x.yaml), a CLI option (--month) or a setting (COMPUTELOOP_SMTP_PORT)."""
    return "." in name or "/" in name or name.startswith("-") or name.isupper()


def _callee(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _field_is(call: ast.Call, name: str) -> bool:
    return any(k.arg == "field" and isinstance(k.value, ast.Name) and k.value.id == name for k in call.keywords)


def fields_named(tree: ast.AST) -> set[str]:
    """The field names a module passes as ``field=``: string literals, plus the literals that reach
    ``field=`` through a variable — a helper's parameter (``_positive("peak_qps", v)``, ``_pool(org,
    p, "donor_pool")``) or a loop over literals (``for name in ("tp", "pp")``)."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    found = {s for c in calls for k in c.keywords if k.arg == "field" and (s := _str(k.value)) is not None}

    # helpers: def f(..., p, ...) whose body raises/calls with field=p
    helpers: dict[str, tuple[int, str]] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
            for c in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                for i, p in enumerate(params):
                    if _field_is(c, p):
                        helpers[fn.name] = (i, p)
    for c in calls:
        if (spec := helpers.get(_callee(c) or "")) is None:
            continue
        index, param = spec
        arg = c.args[index] if index < len(c.args) else next((k.value for k in c.keywords if k.arg == param), None)
        if (s := _str(arg)) is not None:
            found.add(s)

    # loops: for name in ("a", "b") / for name, value in (("a", x), ...): ... field=name
    for loop in ast.walk(tree):
        if not isinstance(loop, ast.For) or not isinstance(loop.iter, (ast.Tuple, ast.List)):
            continue
        target = loop.target.elts[0] if isinstance(loop.target, ast.Tuple) else loop.target
        if not isinstance(target, ast.Name):
            continue
        if not any(isinstance(n, ast.Call) and _field_is(n, target.id) for n in ast.walk(loop)):
            continue
        for item in loop.iter.elts:
            head = item.elts[0] if isinstance(item, (ast.Tuple, ast.List)) and item.elts else item
            if (s := _str(head)) is not None:
                found.add(s)
    return found


def _core_fields() -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for path in CORE_FILES:
        for name in fields_named(ast.parse(path.read_text(encoding="utf-8"))):
            where.setdefault(name, []).append(str(path.relative_to(PROJECT_ROOT)))
    return where


CORE_FIELDS = _core_fields()
USER_FACING = sorted(n for n in CORE_FIELDS if SNAKE.fullmatch(n) and not _technical(n))


def test_the_scan_finds_the_fields_core_names_through_literals_helpers_and_loops():
    # literal, helper parameter (_pool(org, donor_pool, "donor_pool")), loop (for name in ("tp", "pp", ...))
    wanted = {"namespace", "donor_pool", "peak_qps", "micro_batch", "scale_up_window_s", "adjusted_days"}
    assert wanted <= set(USER_FACING)
    assert {"org.yaml", "--month", "COMPUTELOOP_SMTP_PORT"} <= set(CORE_FIELDS)  # found, and technical
    assert not {"org.yaml", "--month", "COMPUTELOOP_SMTP_PORT"} & set(USER_FACING)
    assert len(USER_FACING) > 100


@pytest.mark.parametrize("lang", LANGS)
def test_every_field_core_names_has_a_label(lang):
    missing = {n: CORE_FIELDS[n] for n in USER_FACING if not has_key(FIELD_NAME_PREFIX + n, lang)}
    assert missing == {}


@pytest.mark.parametrize("lang", LANGS)
def test_every_field_of_the_intake_form_has_a_label(lang):
    names = [f.name for f in fields(IntakeForm)]
    required = load_required_fields()
    listed = [*required.common, *(n for names_ in required.by_type.values() for n in names_)]
    assert set(listed) <= set(names) and len(names) > 30
    assert [n for n in names if not has_key(FIELD_NAME_PREFIX + n, lang)] == []


def test_the_form_field_labels_are_the_apply_forms_labels():
    """An error names a field of the intake form with the words the Apply form's widget uses."""
    same_as = {"parameters": None, "data_tokens": None}  # the form shows these two in billions
    for lang in LANGS:
        cat = catalog(lang)
        different = [n for n in (f.name for f in fields(IntakeForm))
                     if n not in same_as and f"form.{n}" in cat and cat[f"fieldname.{n}"] != cat[f"form.{n}"]]
        assert different == [], lang


def test_every_label_is_chinese_in_the_chinese_catalog():
    han = re.compile(r"[\u4e00-\u9fff]")
    zh, en = catalog("zh-CN"), catalog("en")
    keys = [k for k in zh if k.startswith(FIELD_NAME_PREFIX)]
    assert len(keys) > 100
    # technical labels that read the same in Chinese (an acronym) are the only exception
    assert [k for k in keys if not han.search(zh[k]) and zh[k] not in {"PUE"}] == []
    assert [k for k in keys if han.search(en[k])] == []


def test_field_name_gives_the_label_or_none_for_a_technical_field(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "1")  # asking never raises, even in strict mode
    assert field_name("donor_pool", "zh-CN") == catalog("zh-CN")["fieldname.donor_pool"]
    assert field_name("donor_pool", "en") == catalog("en")["fieldname.donor_pool"]
    assert field_name("org.yaml", "zh-CN") is None
    assert field_name("--month", "en") is None
    assert not has_key("no.such.key", "zh-CN")
    assert has_key("error.field_prefix", "zh-CN")


def test_the_ui_shows_a_label_or_a_technical_name_as_code():
    from ui.errors import field_label

    assert field_label("namespace", "zh-CN") == catalog("zh-CN")["fieldname.namespace"]
    assert field_label("org.yaml", "zh-CN") == "`org.yaml`"
    assert field_label("--month", "en") == "`--month`"
    assert field_label("a`b", "en") == "``a`b``"  # a backtick inside cannot end the code early
