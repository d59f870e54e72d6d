"""Confirming a destructive step: --yes, or the project name typed at a terminal; refused without either."""

from __future__ import annotations

from collections.abc import Callable

from lifecycle.errors import UserError
from lifecycle.runner import stdin_is_terminal


def confirm_project(project: str, consequence: str, yes: bool, ask: Callable[[str], str] | None) -> None:
    """A destructive step needs --yes, or the project name typed at a terminal."""
    if yes:
        return
    if ask is None:
        raise UserError(f"{consequence} of {project}; add --yes to confirm (nothing was changed)")
    answer = ask(f"{consequence[0].upper()}{consequence[1:]} of {project}. Type the project name to confirm: ")
    if answer.strip() != project:
        raise UserError("not confirmed; nothing was changed")


def terminal_prompt() -> Callable[[str], str] | None:
    """What asks the user: `input` at a terminal, nothing (so refusal) without one."""
    return input if stdin_is_terminal() else None
