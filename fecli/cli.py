"""The fecli command line: parse, call the library, render. No numerics here.

Heavy imports (numpy, numba, h5py, the estimators) happen inside the commands so
that ``fecli --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .estimators import method_names

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
FORMAT_CHOICE = click.Choice(["table", "json", "csv"])
METHOD_CHOICES = [*method_names(), "all"]

#: Options passed to every selected method that accepts them (no error when one does not).
COMMON_OPTIONS = ("beta", "seed")


def _method_help() -> str:
    """The registry's methods as a block for --help (the one list of methods)."""
    from .estimators import METHODS

    lines = [f"  {m.name:<12} {m.summary}" for m in METHODS.values()]
    return "\b\nMethods:\n" + "\n".join(lines)


class FecliGroup(click.Group):
    """Reports expected failures (FecliError) as one line and their exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import FecliError

        try:
            return super().invoke(ctx)
        except FecliError as exc:
            if ctx.params.get("debug") or os.environ.get("FECLI_DEBUG"):
                raise
            _error(str(exc))
            ctx.exit(exc.exit_code)


@click.group(cls=FecliGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fecli")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """fecli: free energies (ln Z) of Restricted Boltzmann Machines.

    Models are fecli-rbm HDF5 files (see the README). Results go to stdout,
    progress and messages to stderr. Exit status: 0 success, 1 failure, 2 usage error.
    """


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json (one object per line) for pipelines.")
def info(models: tuple[Path, ...], fmt: str) -> None:
    """Describe MODELS: sizes, unit types, parameter statistics, metadata, feasible estimators."""
    from . import report
    from .errors import FecliError
    from .info import describe

    failed = False
    out = report.make_console(sys.stdout)
    for path in models:
        try:
            summary = describe(path)
        except FecliError as exc:
            _error(str(exc))
            failed = True
            continue
        if fmt == "json":
            click.echo(report_json(summary))
        else:
            report.print_info(out, summary)
    sys.exit(EXIT_FAILURE if failed else EXIT_OK)


def report_json(summary: dict[str, Any]) -> str:
    import json

    from .result import _jsonable

    return json.dumps(_jsonable(summary), allow_nan=False)


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--method", "methods", multiple=True, type=click.Choice(METHOD_CHOICES),
              default=("exact",), show_default=True,
              help="Estimator; repeat for several, 'all' for every method.")
@click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature (> 0).")
@click.option("--seed", type=int, default=None, help="Seed of stochastic methods (same seed, same numbers).")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="table", show_default=True,
              help="table for people; json (one object per line) or csv for pipelines.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write results to this file instead of stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings on stderr.")
@click.option("--max-units", type=int, default=None,
              help="exact: largest layer to enumerate.  [default: 30]")
@click.option("--layer", type=click.Choice(["auto", "hidden", "visible"]), default=None,
              help="exact: layer to enumerate.  [default: auto, the smaller]")
@click.pass_context
def estimate(ctx: click.Context, models: tuple[Path, ...], methods: tuple[str, ...], beta: float,
             seed: int | None, fmt: str, output: Path | None, quiet: bool, **method_options: Any) -> None:
    """Estimate ln Z and the free energy of MODELS with one or more methods."""
    from . import report
    from .api import estimate as run_estimate
    from .api import method_options as accepted_options
    from .errors import FecliError, InvalidOptionError
    from .io import load_model

    if "all" in methods:
        methods = tuple(method_names())
    methods = tuple(dict.fromkeys(methods))
    _check_output_path(output)
    given = {k: v for k, v in method_options.items() if v is not None}
    common = {"beta": beta, "seed": seed}
    accepted = {m: set(accepted_options(m)) for m in methods}
    unused = sorted(k for k in given if not any(k in acc for acc in accepted.values()))
    if unused:
        names = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise InvalidOptionError(f"{names} does not apply to the selected method(s): {', '.join(methods)}.")

    results = []
    failed = False
    stream = output is None and fmt in ("json", "csv")
    if stream and fmt == "csv":
        click.echo(report.csv_header())
    for path in models:
        try:
            model = load_model(path)
        except FecliError as exc:
            _error(str(exc))
            failed = True
            continue
        for method in methods:
            options = {k: v for k, v in {**common, **given}.items() if k in accepted[method]}
            if "seed" in options and options["seed"] is None:
                del options["seed"]
            with report.DelayedProgress(enabled=not quiet) as progress:
                if "progress" in accepted[method]:
                    options["progress"] = progress
                try:
                    result = run_estimate(model, method, **options)
                except FecliError as exc:
                    _error(f"{path} [{method}]: {exc}")
                    failed = True
                    continue
            if not quiet:
                for text in result.warnings:
                    _warn(f"{path} [{method}]: {text}")
            results.append(result)
            if stream:
                click.echo(report.json_line(result) if fmt == "json" else report.csv_line(result))
    if output is not None:
        from .atomic import write_text_atomically

        write_text_atomically(output, report.render(results, fmt))
    elif fmt == "table" and results:
        report.make_console(sys.stdout).print(report.results_table(results))
    sys.exit(EXIT_FAILURE if failed else EXIT_OK)


estimate.help = (estimate.help or "") + "\n\n" + _method_help()


def _check_output_path(output: Path | None) -> None:
    from .errors import FecliError

    if output is None:
        return
    folder = output.parent
    if not folder.is_dir():
        raise FecliError(f"cannot write output file '{output}': folder '{folder}' does not exist.")
    if output.is_dir():
        raise FecliError(f"cannot write output file '{output}': it is a folder.")
    if not os.access(folder, os.W_OK):
        raise FecliError(f"cannot write output file '{output}': folder '{folder}' is not writable.")


def _error(message: str) -> None:
    click.echo(f"fecli: error: {message}", err=True)


def _warn(message: str) -> None:
    click.echo(f"fecli: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line for any error, tracebacks only with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("FECLI_DEBUG"))
    try:
        code = cli.main(args=args, prog_name="fecli", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("fecli: interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("fecli: interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: keep it visible, but one line unless --debug
        if debug:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback.")
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
