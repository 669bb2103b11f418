"""The model-reading options of every command that reads a model, declared once.

``@model_options`` adds --model-format, --checkpoint, --names, --transpose and --allow-pickle to
a command without changing its signature: the values go to the click context, and
:func:`open_from_cli` reads the model with them.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from ..cli_choice import Choice
from . import FORMATS

#: Where the options' values wait in ``click.Context.meta``.
META_KEY = "fecli.model_options"


def _keep(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if param.name == "names" and value is not None:
        from ..errors import ModelFileError
        from .spec import parse_names

        try:
            value = parse_names(value)
        except ModelFileError as exc:
            raise click.BadParameter(str(exc).removeprefix("--names: "), ctx, param) from None
    if param.name == "transpose" and value is not None:
        value = value == "yes"
    ctx.meta.setdefault(META_KEY, {})[param.name] = value
    return value


def _declarations(brief: bool) -> list[Callable[[Any], Any]]:
    common = dict(expose_value=False, callback=_keep)
    more = dict(hidden=brief, **common)
    return [
        click.option("--model-format", "format", type=Choice(["auto", *FORMATS]), default="auto",
                     show_default=not brief, metavar="NAME",
                     help=("Read MODEL as this format (see 'fecli convert --help')." if brief else
                           f"Model file format: {', '.join(FORMATS)} or auto (from the content)."), **common),
        click.option("--checkpoint", "checkpoint", type=int, default=None,
                     help="DsysDML/rbms files: the checkpoint (update number) to read, also written MODEL.h5@K.  "
                          "[default: the last]", **more),
        click.option("--names", "names", metavar="ROLE=KEY,...", default=None,
                     help="npz, safetensors, pt and plain HDF5 files: the arrays to read, e.g. "
                          "weights=W,visible_bias=bv,hidden_bias=bh.  [default: guessed from common names]", **more),
        click.option("--transpose", "transpose", type=Choice(["yes", "no"]), default=None,
                     help="Whether the weight matrix is stored (n_hidden, n_visible); needed when n_visible == "
                          "n_hidden.  [default: from the bias lengths]", **more),
        click.option("--allow-pickle", "allow_pickle", is_flag=True, default=False,
                     help="Read pickle/joblib files (scikit-learn): a pickle can run code, so only files you trust.",
                     **more),
    ]


def model_options(func: Callable[..., Any] | None = None, *, brief: bool = False) -> Any:
    """Decorator: the model-reading options (their values go to the context, not to ``func``).
    ``brief``: show only --model-format in --help (commands whose help lists methods)."""
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(_declarations(brief)):
            f = option(f)
        return f

    return decorate(func) if func is not None else decorate


def read_options() -> dict[str, Any]:
    """The current command's model-reading options, as keyword arguments of ``open_model``."""
    ctx = click.get_current_context(silent=True)
    values = dict(ctx.meta.get(META_KEY, {})) if ctx is not None else {}
    return {k: v for k, v in values.items() if v is not None}


def open_from_cli(path: Any) -> Any:
    """``open_model(path)`` with the command's options; the reader's warnings go to stderr."""
    from . import open_model

    model = open_model(path, **read_options())
    for text in getattr(getattr(model, "source", None), "warnings", []):
        click.echo(f"fecli: warning: {text}", err=True)
    return model
