"""``calpool demo``: the embedded default on loopback, until Ctrl-C."""

from __future__ import annotations

from daemon.commands.invocation import CommandFailed, Invocation
from daemon.demo.session import DemoFailed, run_demo


def run(invocation: Invocation) -> int:
    try:
        return run_demo(invocation.args.port, invocation.out, invocation.err)
    except DemoFailed as exc:
        raise CommandFailed(str(exc)) from exc
