"""Running ``python -m core …`` in-process on the test database: the ``cli`` fixture and its checks."""

from __future__ import annotations

import json

import pytest

from core.cli import main


@pytest.fixture
def cli(ctx, db_url, monkeypatch, capsys):
    """Run ``python -m core …`` in-process on the test database; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("COMPUTELOOP_DATABASE_URL", db_url)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def json_of(result: tuple[int, str, str]):
    code, out, err = result
    assert code == 0, err
    return json.loads(out)


def refused(result: tuple[int, str, str], *, names: str) -> str:
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and names in err, err
    return err
