"""gunicorn's master process, started as ``python -m dashboard.process.master`` (what
``python -m dashboard serve`` runs): ``python -m gunicorn`` with two of its imports deferred.

The master only supervises the one worker: it forks it, watches its heartbeat and restarts it.
``gunicorn.util`` imports ``importlib.metadata`` (for ``egg:`` worker-class URIs, which this
project never uses) and ``email.utils`` (for the HTTP ``Date`` header, which only the worker
writes); with what they import (``email``'s parser and message classes, ``zipfile``, ``csv``,
``importlib.resources``) they were 3.6 MB of the master's 16 MB of anonymous memory for code it
never runs (issue 19, RssAnon of the imports). And the master's pages cost twice: the worker
starts as a copy-on-write view of them, and most get copied as it runs (14 of the master's 16 MB
were private to it, /proc/PID/smaps_rollup of the demo).

Each is put in ``sys.modules`` as a :class:`Deferred` module: the real one is imported at the
first use of any of its names, in whichever process that happens (the worker inherits the
stand-ins and, when something there uses them, loads the real modules then), and the stand-in
takes the real module's names, so whoever imported it early sees the real module from then on.
"""
from __future__ import annotations

import importlib
import sys
import types

DEFERRED = ("importlib.metadata", "email.utils")


class Deferred(types.ModuleType):
    """A module imported at the first use of one of its names."""

    def __getattr__(self, attr: str):
        # Only names not in the module's dict come here: before the real import, every name but
        # the few a new module has (__name__, __spec__ None, ...). __path__ too: importing a
        # submodule of a deferred package loads the package first (a submodule the package
        # imports itself then runs twice, once for each; nothing here imports one that way).
        return getattr(self.load(), attr)

    def load(self) -> types.ModuleType:
        name = self.__name__
        if sys.modules.get(name) is self:
            # pop: two threads may get here at once; the second finds the first's real module
            # (or waits on the import lock for it).
            sys.modules.pop(name, None)
        real = importlib.import_module(name)
        # Whoever holds the stand-in (``import email.utils`` in gunicorn.util) sees the real names.
        self.__dict__.update(real.__dict__)
        return real


def defer(names: tuple[str, ...] = DEFERRED) -> list[str]:
    """Put a :class:`Deferred` stand-in in place of each module of ``names`` not yet imported;
    the names deferred."""
    done = []
    for name in names:
        if name in sys.modules:
            continue
        parent, _, child = name.rpartition(".")
        stand_in = Deferred(name)
        sys.modules[name] = stand_in
        if parent:
            # ``import email.utils`` binds ``email`` and finds ``utils`` on it.
            setattr(importlib.import_module(parent), child, stand_in)
        done.append(name)
    return done


def main() -> None:
    defer()
    from gunicorn.app.wsgiapp import run  # lazy: after the stand-ins are in place
    # prog: gunicorn's own usage and error lines (as ``python -m gunicorn`` names itself).
    run(prog="gunicorn")


if __name__ == "__main__":
    main()
