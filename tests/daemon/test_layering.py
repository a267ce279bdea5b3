"""The daemon only wires: it opens no store transaction of its own.

import-linter keeps the daemon's imports of ``engine.store`` to the
package's face (pyproject's contracts); a unit of work reaches the daemon
as an object, though, which no import rule sees, so this test reads the
daemon's code for the calls that open one."""

from __future__ import annotations

import ast
from pathlib import Path

DAEMON = Path(__file__).resolve().parents[2] / "daemon"
TRANSACTIONS = {"unit_of_work", "reader"}


def transactions_opened(source: str) -> list[int]:
    """Lines of ``source`` that call ``<anything>.unit_of_work()`` or ``.reader()``."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in TRANSACTIONS]


def test_the_finder_sees_a_transaction_opened() -> None:
    assert transactions_opened("with app.store.reader() as uow:\n    pass\n") == [1]
    assert transactions_opened("x = 1\nstore.unit_of_work().commit()\n") == [2]
    assert transactions_opened("reader = make_reader()\n") == []


def test_no_daemon_module_opens_a_store_transaction() -> None:
    found = {str(path.relative_to(DAEMON)): lines
             for path in sorted(DAEMON.rglob("*.py"))
             if (lines := transactions_opened(path.read_text(encoding="utf-8")))}
    assert found == {}, f"store transactions opened in daemon/ (move them into a service): {found}"
