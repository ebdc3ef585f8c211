"""Structured logs (core/logs.py): with COMPUTELOOP_LOG_FORMAT=json every event is one JSON line with
time, level, event, actor, subject and outcome; every CLI run is one such event; and no line — JSON
or text, message, fields or traceback — carries a password, even when the error names a URL with
user:password."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from core import logs
from core.cli import main
from core.config import PROJECT_ROOT
from core.redact import MASK

SECRET = "s3cr3t-Pa55"
URL = f"postgresql+psycopg://portal:{SECRET}@db.example.internal:5432/computeloop"


@pytest.fixture
def logging_as(monkeypatch):
    """Configure the format given, with no other handler on the root logger (as in a container);
    the test runner's handlers are put back afterwards."""
    root = logging.getLogger()
    saved = list(root.handlers)

    def configure(fmt: str) -> str:
        monkeypatch.setenv(logs.FORMAT_ENV, fmt)
        for handler in list(root.handlers):
            if handler.get_name() != "computeloop-logs":
                root.removeHandler(handler)
        return logs.configure()

    yield configure
    logs.reset()
    for handler in saved:
        if handler not in root.handlers:
            root.addHandler(handler)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_a_json_line_carries_the_event_fields_first(logging_as, capsys):
    assert logging_as("json") == "json"
    logs.event("core.reclaim.daily", "reclaim.expiry", outcome="done", actor="li.na", subject="CR-2026-000012",
               gpus=8)
    logging.getLogger("core.lifecycle.provisioning").warning("request %s: no e-mail", 12)
    first, second = [json.loads(ln) for ln in lines(capsys.readouterr().err)]
    assert list(first)[:6] == list(logs.FIELDS)
    assert (first["event"], first["actor"], first["subject"], first["outcome"], first["level"], first["gpus"]) == (
        "reclaim.expiry", "li.na", "CR-2026-000012", "done", "info", 8)
    assert first["time"].endswith("Z") and "T" in first["time"]
    # a record that names no event: its logger is the event, the system the actor, the level the outcome
    assert (second["event"], second["actor"], second["subject"], second["outcome"], second["message"]) == (
        "core.lifecycle.provisioning", "system", None, "warning", "request 12: no e-mail")


def _fail_with_the_url() -> None:
    try:
        raise ConnectionError(f"could not connect to {URL}: connection refused")
    except ConnectionError as exc:
        logging.getLogger("core.reclaim.daily").exception("daily step %s failed: %s", "expiry", exc)
        logs.event("computeloop.cli", "cli.jobs.daily", outcome="failed", level=logging.ERROR, exc_info=exc,
                   database_url=URL, smtp_password=SECRET)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_line_carries_the_password_of_a_url_an_error_names(fmt, logging_as, capsys):
    logging_as(fmt)
    _fail_with_the_url()
    err = capsys.readouterr().err
    assert len(lines(err)) == 2, "one line per event, tracebacks included"
    assert SECRET not in err
    assert "portal:" + MASK in err or "portal:" + json.dumps(MASK)[1:-1] in err, "the user name stays, the password goes"
    if fmt == "json":
        step, event = [json.loads(ln) for ln in lines(err)]
        assert step["outcome"] == "failed" and "ConnectionError" in step["error"] and "Traceback" in step["traceback"]
        assert "db.example.internal" in step["message"] and MASK in step["message"]
        assert event["smtp_password"] == MASK and event["database_url"].startswith("postgresql+psycopg://portal:")


def test_text_lines_are_warnings_and_up_and_never_a_traceback(logging_as, capsys):
    assert logging_as("text") == "text"
    logging.getLogger("core.reclaim.daily").info("an info line")
    _fail_with_the_url()
    out = lines(capsys.readouterr().err)
    assert len(out) == 2 and all(" ERROR " in ln for ln in out)
    assert not any("Traceback" in ln for ln in out)


def test_an_unknown_format_is_named_and_logs_as_text(logging_as, capsys):
    assert logging_as("jsonl") == "text"
    (line,) = lines(capsys.readouterr().err)
    assert logs.FORMAT_ENV in line and '"jsonl"' in line


def test_text_format_leaves_logging_alone_when_something_else_configured_it(monkeypatch):
    monkeypatch.setenv(logs.FORMAT_ENV, "text")
    before = list(logging.getLogger().handlers)
    assert before, "pytest's capture handlers are installed"
    logs.configure()
    assert logging.getLogger().handlers == before


def test_every_cli_run_is_one_event(logging_as, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv(logs.FORMAT_ENV, "json")
    logging_as("json")
    assert main(["estimate", "gpus", "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # the command's own output stays clean JSON on stdout
    (done,) = [json.loads(ln) for ln in lines(captured.err)]
    assert (done["event"], done["actor"], done["outcome"], done["exit_code"]) == ("cli.estimate.gpus", "system", "ok", 0)

    assert main(["requests", "show", "999999", "--as", "li.na"]) == 2
    refused = [json.loads(ln) for ln in lines(capsys.readouterr().err) if ln.startswith("{")]
    assert [(r["event"], r["actor"], r["subject"], r["outcome"]) for r in refused] == [
        ("cli.requests.show", "li.na", "id=999999", "refused")]


def test_a_job_run_by_the_real_entry_point_is_one_json_event(tmp_path):
    """``python -m core`` in a child process, as a CronJob runs it, failing on its database: one JSON
    event on stderr, and the database URL's password in no line."""
    env = {**os.environ, "COMPUTELOOP_LOG_FORMAT": "json",
           "COMPUTELOOP_DATABASE_URL": f"postgresql+psycopg://portal:{SECRET}@127.0.0.1:1/computeloop?connect_timeout=2"}
    done = subprocess.run([sys.executable, "-m", "core", "jobs", "queue-snapshot"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    events = [json.loads(ln) for ln in lines(done.stderr) if ln.startswith("{")]
    assert [(e["event"], e["outcome"]) for e in events] == [("cli.jobs.queue-snapshot", "failed")]
    assert SECRET not in done.stderr + done.stdout
