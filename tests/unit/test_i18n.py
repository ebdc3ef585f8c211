"""Every visible string goes through the catalogs, in both languages, with the same parameters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT
from core.i18n import LANGS, MissingMessage, catalog, normalize_lang, placeholders, translate

UI_FILES = sorted([PROJECT_ROOT / "app.py", *(PROJECT_ROOT / "app_pages").glob("*.py"), *(PROJECT_ROOT / "ui").glob("*.py")])
CORE_FILES = sorted((PROJECT_ROOT / "core").rglob("*.py"))
STATIC_KEY = re.compile(r"""\b(?:t|translate|Msg|InputError|ComputeLoopError|NotFound|PermissionDenied|DatabaseNotReady)\(\s*["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)["']""")


def test_both_catalogs_have_the_same_keys():
    zh, en = catalog("zh-CN"), catalog("en")
    assert sorted(set(zh) - set(en)) == [], "keys only in zh-CN"
    assert sorted(set(en) - set(zh)) == [], "keys only in en"


def test_every_message_is_translated_and_uses_the_same_placeholders():
    zh, en = catalog("zh-CN"), catalog("en")
    empty = [k for k in en if not en[k].strip() or not zh[k].strip()]
    assert empty == []
    mismatched = [k for k in en if placeholders(en[k]) != placeholders(zh[k])]
    assert mismatched == []


def test_chinese_messages_are_not_left_in_english():
    zh, en = catalog("zh-CN"), catalog("en")
    han = re.compile(r"[\u4e00-\u9fff]")
    # Short technical labels (units, "GPU", "PUE", "TP") may be identical in both languages.
    untranslated = [k for k in en if zh[k] == en[k] and not han.search(zh[k]) and len(en[k]) > 14]
    assert untranslated == []


@pytest.mark.parametrize("path", CORE_FILES + UI_FILES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_key_the_code_names_exists(path: Path):
    keys = set(STATIC_KEY.findall(path.read_text(encoding="utf-8")))
    missing = sorted(k for k in keys if k not in catalog("en"))
    assert missing == []


def _string_literals_shown(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants passed as the first argument or label/help of st.* calls."""
    shown = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        base, chain = node.func.value, [node.func.attr]
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if {"session_state", "query_params", "context"} & set(chain) or node.func.attr in {"pop", "get", "setdefault"}:
            continue
        if not (isinstance(base, ast.Name) and base.id in {"st", "c", "c1", "c2", "c3", "c4", "left", "right"}):
            continue
        if node.func.attr in {"Page", "switch_page", "set_page_config", "navigation", "cache_data", "cache_resource",
                              "columns", "tabs", "container", "form", "download_button", "code", "stop", "rerun"}:
            continue
        args = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in {"label", "help", "body", "placeholder"}]
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and re.search(r"[A-Za-z\u4e00-\u9fff]{2,}", arg.value):
                shown.append((node.lineno, arg.value))
    return shown


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_pages_show_no_string_that_is_not_in_the_catalogs(path: Path):
    literals = _string_literals_shown(ast.parse(path.read_text(encoding="utf-8")))
    assert literals == [], f"visible literals not from the catalogs: {literals}"


def test_core_never_imports_streamlit():
    offenders = [str(p.relative_to(PROJECT_ROOT)) for p in CORE_FILES
                 if re.search(r"^\s*(import streamlit|from streamlit)", p.read_text(encoding="utf-8"), re.M)]
    assert offenders == []


def test_missing_key_raises_in_strict_mode_and_shows_the_key_otherwise(monkeypatch):
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "1")
    with pytest.raises(MissingMessage):
        translate("no.such.key", "en")
    monkeypatch.setenv("COMPUTELOOP_I18N_STRICT", "0")
    assert translate("no.such.key", "en") == "no.such.key"


@pytest.mark.parametrize(("browser", "expected"), [("zh-CN", "zh-CN"), ("zh_Hans_CN", "zh-CN"), ("en-US", "en"),
                                                   ("en", "en"), (None, "zh-CN"), ("fr-FR", "zh-CN")])
def test_browser_locale_maps_to_a_ui_language(browser, expected):
    assert normalize_lang(browser) == expected
    assert expected in LANGS


def test_every_permission_action_has_a_message_in_both_languages():
    from core.identity import action_key

    phrases = set()
    for path in CORE_FILES:
        text = path.read_text(encoding="utf-8")
        phrases |= set(re.findall(r'require\([^)]*?,\s*"([^"]+)"\)', text))
        phrases |= set(re.findall(r'PermissionDenied\([^)]*action="([^"]+)"', text))
        phrases |= set(re.findall(r'_own_row\(s, actor, inbox_id, "([^"]+)"\)', text))
    assert len(phrases) > 10
    missing = sorted(action_key(p) for p in phrases if action_key(p) not in catalog("en"))
    assert missing == []
