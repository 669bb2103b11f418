"""The choice type of every fecli option with a fixed set of values."""

from __future__ import annotations

import difflib
from typing import Any

import click


class Choice(click.Choice):
    """click.Choice whose error also names the closest valid value, as git and pip do:
    "'gibs' is not one of 'auto', 'exact', 'gibbs'; did you mean 'gibbs'?"."""

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
        message = super().get_invalid_choice_message(value, ctx).rstrip(".")
        return f"{message}; did you mean {close[0]!r}?" if close else message + "."
