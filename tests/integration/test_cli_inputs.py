"""The command line's bad-input defects of issue 11 (item 8) that reach the database, on SQLite and
PostgreSQL: ids beyond PostgreSQL ``integer``, form files with deep nesting, 400-digit integers,
NaN, NUL or unpaired surrogates, an unknown --status, full-width month digits, unbounded counts.
Each is refused with exit 2 and one stderr line naming the argument or file, and no row changes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from core.lifecycle.persistence import RequestRow
from core.lifecycle.states import STATUSES
from tests.support.forms import MEDIUM


def refused(result: tuple[int, str, str], *, names: str) -> str:
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err and names in err, err
    return err


def _requests(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(RequestRow))


@pytest.mark.parametrize("value", ["99999999999999999999", "1e308", "9223372036854775808", "2147483648"])
@pytest.mark.parametrize("command", [
    ["requests", "show"], ["requests", "timeline"], ["allocations", "show"], ["report", "show"],
    ["requests", "draft", "form"],
])
def test_an_id_beyond_postgresql_integer_is_refused_naming_the_id(cli, command, value):
    refused(cli(*command, value, "--as", "li.na"), names="argument id")


def test_the_largest_integer_id_is_looked_up_and_not_found(cli):
    code, out, err = cli("requests", "show", "2147483647", "--as", "li.na")
    assert code == 2 and "2147483647" in err and "argument id" not in err, err


@pytest.mark.parametrize("argv,names", [
    (["requests", "decide", "1", "--decision", "approve_adjusted", "--reason", "x", "--gpus", "99999999999999999999",
      "--as", "li.na"], "--gpus"),
    (["requests", "decide", "1", "--decision", "approve_adjusted", "--reason", "x", "--days", "1e308",
      "--as", "li.na"], "--days"),
    (["notify", "send", "--limit", "99999999999999999999"], "--limit"),
    (["demo", "metrics", "--days", "99999999999999999999"], "--days"),
    (["demo", "history", "--months", "99999999999999999999"], "--months"),
    (["report", "list", "--month", "２０２６-１０", "--as", "li.na"], "--month"),
])
def test_counts_and_months_out_of_range_are_refused(cli, argv, names):
    refused(cli(*argv), names=names)


def test_an_unknown_status_is_refused_listing_the_valid_ones(cli):
    err = refused(cli("requests", "list", "--status", "<x>", "--as", "li.na"), names="--status")
    assert all(status in err for status in STATUSES)


def _file(tmp_path, content: bytes | str, name: str = "form.json") -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


HOSTILE_FORMS = {
    "deep nesting": '{"key_libraries": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "400-digit integer": json.dumps(MEDIUM)[:-1] + ', "estimate_id": ' + "9" * 400 + "}",
    "5000-digit integer": '{"requested_gpus": ' + "9" * 5000 + "}",
    "NaN": json.dumps({**MEDIUM, "data_size_gb": float("nan")}),
    "NUL": json.dumps({**MEDIUM, "business_background": "a\x00b"}),
    "unpaired surrogate": json.dumps(MEDIUM)[:-1] + ', "contact": "\\ud800"}',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_FORMS))
@pytest.mark.parametrize("command", [["requests", "submit"], ["requests", "precheck"], ["requests", "draft", "save"]])
def test_a_hostile_form_file_is_refused_naming_the_file_and_nothing_is_written(ctx, cli, tmp_path, command, kind):
    path = _file(tmp_path, HOSTILE_FORMS[kind])
    refused(cli(*command, "--file", path, "--as", "zhang.wei"), names=path)
    assert _requests(ctx) == 0


def test_a_form_file_that_is_a_device_is_refused_not_read(cli, tmp_path):
    refused(cli("requests", "precheck", "--file", "/dev/zero", "--as", "zhang.wei"), names="/dev/zero")


def test_a_valid_form_file_still_submits(ctx, cli, tmp_path):
    code, out, err = cli("requests", "submit", "--file", _file(tmp_path, json.dumps(MEDIUM, ensure_ascii=False)),
                         "--as", "zhang.wei", "--json")
    assert code == 0, err
    assert json.loads(out)["requested_gpus"] == MEDIUM["requested_gpus"] and _requests(ctx) == 1
