"""Account commands: ``create-user``, ``create-token``, ``revoke-token``, and the first admin.

New passwords and tokens are printed once and only here (stdout for what a script captures),
never through ``logging``: a log file must not hold them. The first admin's password goes to
``<data_dir>/admin_password`` (0600), and to stderr only when that is a terminal: under the
systemd units stderr is the journal, readable by more people than the data dir.
"""
from __future__ import annotations

import getpass
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TextIO

from dashboard.auth.accounts import ROLES, AccountError, Accounts, new_password
from dashboard.config.settings import Settings
from dashboard.store import Store


@contextmanager
def open_accounts(settings: Settings) -> Iterator[Accounts]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.data_dir, settings.raw_retention_h, settings.rollup_retention_d,
                  settings.store_url, settings.store_pool_size)
    acc = Accounts(store.connect, data_dir=settings.data_dir)
    try:
        yield acc
    finally:
        acc.close()
        store.close()


PASSWORD_FILE = "admin_password"


def write_password_file(path: Path, password: str) -> None:
    """``password`` into ``path``, readable by its owner only (also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):          # no isatty, or closed
        return False


def announce_first_admin(acc: Accounts, stream: TextIO | None = None) -> bool:
    """On the very first start (no user at all) create ``admin`` with a random password, keep
    it in ``<data_dir>/admin_password`` (0600) and say where; print the password itself only
    to a terminal. Safe to call from every start path: only one call ever creates it (one
    SQLite write transaction)."""
    password = acc.bootstrap_admin("admin")
    if password is None:
        return False
    pw_file = acc.data_dir() / PASSWORD_FILE
    write_password_file(pw_file, password)
    out = stream or sys.stderr
    if _is_terminal(out):
        out.write("\n" + "=" * 72 + "\n"
                  "dashboard: first start: created the user 'admin' (role admin) with password\n\n"
                  f"    {password}\n\n"
                  f"It is shown only this once (and kept in {pw_file}, mode 600: delete it\n"
                  "once you have logged in). Add people on /admin, or run\n"
                  "`python -m dashboard create-user NAME --role admin`.\n" + "=" * 72 + "\n\n")
    else:
        # A pipe, a log file or the journal: the password must not land there.
        out.write(f"dashboard: first admin created; password in {pw_file}\n")
    out.flush()
    return True


def first_admin(settings: Settings) -> bool:
    with open_accounts(settings) as acc:
        return announce_first_admin(acc)


def _read_password(args) -> tuple[str, bool]:
    """(password, generated?)"""
    if args.password_stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
        return pw, False
    if sys.stdin.isatty():
        pw = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != pw:
            raise AccountError("the two passwords differ")
        return pw, False
    return new_password(), True


def cmd_create_user(args, load: Callable) -> int:
    settings = load(args)
    try:
        password, generated = _read_password(args)
        with open_accounts(settings) as acc:
            user = acc.create_user(args.name, args.role, password)
    except AccountError as e:
        print(f"create-user: {e}", file=sys.stderr)
        return 2
    print(f"created user {user.name} ({user.role})", file=sys.stderr)
    if generated:
        print(password)                   # stdout, once: the caller captures it
    return 0


def cmd_create_token(args, load: Callable) -> int:
    settings = load(args)
    try:
        with open_accounts(settings) as acc:
            token, text = acc.create_token(args.role, args.name or "", created_by="cli")
    except AccountError as e:
        print(f"create-token: {e}", file=sys.stderr)
        return 2
    print(f"token #{token.id} {token.name} ({token.role}); shown once, send it as "
          "'Authorization: Bearer <token>'", file=sys.stderr)
    print(text)
    return 0


def cmd_revoke_token(args, load: Callable) -> int:
    settings = load(args)
    try:
        with open_accounts(settings) as acc:
            acc.revoke_token(args.id)
    except AccountError as e:
        print(f"revoke-token: {e}", file=sys.stderr)
        return 2
    print(f"token #{args.id} revoked", file=sys.stderr)
    return 0


def add_commands(sub, load: Callable) -> None:
    """Register the commands on the ``python -m dashboard`` sub-parsers."""
    u = sub.add_parser("create-user", help="add a user (prompts for the password)")
    u.add_argument("name")
    u.add_argument("--role", choices=ROLES, required=True)
    u.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    u.set_defaults(func=lambda a: cmd_create_user(a, load))
    t = sub.add_parser("create-token", help="print a new API token (shown once)")
    t.add_argument("--role", choices=ROLES, required=True)
    t.add_argument("--name", help="what the token is for, e.g. prometheus")
    t.set_defaults(func=lambda a: cmd_create_token(a, load))
    r = sub.add_parser("revoke-token", help="revoke an API token by its number")
    r.add_argument("id", type=int)
    r.set_defaults(func=lambda a: cmd_revoke_token(a, load))
