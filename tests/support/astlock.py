"""One thread at a time through CPython 3.11's AST conversion, in the test process.

CPython 3.11 keeps the AST converter's recursion depth in interpreter-wide state, not per
thread: when two threads convert at once (``ast.parse``, or ``compile`` of an AST), one of them
can fail with ``SystemError: AST constructor recursion depth mismatch`` (python/cpython
gh-106905; seen here at random in full runs). In the test process the main thread compiles
(pytest's assertion rewriting, werkzeug's routing rules) while background threads of in-process
apps log exceptions, and formatting a traceback in 3.11 parses the failing line with
``ast.parse`` (the ``^^^^`` carets). ``install()`` puts both behind one lock.
"""
from __future__ import annotations

import ast
import builtins
import sys
import threading
from typing import Any

_LOCK = threading.RLock()
_installed = False


def install() -> None:
    global _installed
    if _installed or sys.version_info >= (3, 12):
        return
    _installed = True
    real_parse, real_compile = ast.parse, builtins.compile

    def parse(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return real_parse(*args, **kwargs)

    def compile_(source: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(source, ast.AST) or ast.PyCF_ONLY_AST & (args[2] if len(args) > 2
                                                                 else kwargs.get("flags", 0)):
            with _LOCK:
                return real_compile(source, *args, **kwargs)
        return real_compile(source, *args, **kwargs)

    ast.parse = parse                      # type: ignore[assignment]
    builtins.compile = compile_            # type: ignore[assignment]
