"""A fault put into a Streamlit process started by a browser test, to prove its checks see a failing
page: a ``sitecustomize`` module in a throwaway folder on the process's ``PYTHONPATH`` replaces one
service function with one that raises, before app.py runs. Nothing in the app knows about it.

Kept free of test-only imports: it runs inside the app's process.
"""

from __future__ import annotations

import importlib
from pathlib import Path


class InjectedFault(RuntimeError):
    """What the replaced service raises; its class name is what the page's error message names."""


def install(target: str) -> None:
    """Replace the function ``target`` ("package.module.function") with one that raises
    :class:`InjectedFault`. Raises AttributeError when there is no such function, so a renamed
    service fails the test instead of leaving the fault out."""
    module_name, name = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    if not callable(getattr(module, name)):
        raise AttributeError(f"{target} is not a function")

    def broken(*args, **kwargs):
        raise InjectedFault(f"{target} made to raise by a browser test")

    setattr(module, name, broken)


def shim_folder(folder: Path, target: str) -> Path:
    """Write ``folder/sitecustomize.py`` installing the fault on ``target``; returns ``folder``,
    to be put first on the app process's ``PYTHONPATH`` (with the project root after it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "from tests.support.browser_faults import install\n"
        f"install({target!r})\n",
        encoding="utf-8",
    )
    return folder
