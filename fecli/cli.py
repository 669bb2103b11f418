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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


@cli.command("train-rbm")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Model file to write (at checkpoints and at the end). With --resume: defaults to that file.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="Continue training from this model file (a checkpoint written by train-rbm).")
@click.option("--key", default=None, help="Array name inside an .npz data file.")
@click.option("--binarize", type=float, default=None, help="Threshold: values > THRESHOLD become 1 (greyscale data).")
@click.option("--scale", type=float, default=None, help="Divide the data by this first (e.g. 255), then --binarize.")
@click.option("--validation", type=float, default=None,
              help="Fraction of the rows held out for validation metrics.  [default: 0, none]")
@click.option("--validation-data", type=click.Path(path_type=Path), default=None,
              help="Held-out data file for validation metrics (same format options).")
@click.option("--hidden", type=int, default=None, help="Number of hidden units.  [default: 64]")
@click.option("--method", type=click.Choice(["cd", "pcd"]), default=None,
              help="cd: chains start at the data; pcd: persistent chains.  [default: pcd]")
@click.option("--k", type=int, default=None, help="Gibbs steps per update.  [default: 1]")
@click.option("--epochs", type=int, default=None, help="Total passes over the training data.  [default: 10]")
@click.option("--batch-size", type=int, default=None, help="Examples per update (and PCD chains).  [default: 20]")
@click.option("--lr", type=float, default=None, help="Learning rate.  [default: 0.05]")
@click.option("--lr-decay", type=float, default=None,
              help="Epoch e (from 0) uses lr / (1 + lr_decay * e).  [default: 0.1]")
@click.option("--momentum", type=float, default=None, help="Momentum in [0, 1).  [default: 0.5]")
@click.option("--weight-decay", type=float, default=None, help="L2 penalty on the weights.  [default: 0]")
@click.option("--seed", type=int, default=None, help="Seed (same seed, same model).  [default: random, stored]")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
              help="Training arithmetic; the saved model is float64.  [default: float32]")
@click.option("--monitor-every", type=int, default=None,
              help="Compute metrics every N epochs (0: only after the last).  [default: 1]")
@click.option("--monitor-rows", type=int, default=None,
              help="Rows used for reconstruction error and pseudo-likelihood.  [default: 1000]")
@click.option("--checkpoint-every", type=int, default=None,
              help="Write the output every N epochs (0: only at the end or on Ctrl-C).  [default: 0]")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Metrics at the end on stdout: a table, or one JSON object per monitored epoch.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, epoch lines or warnings on stderr.")
def train_rbm(data: Path, output: Path | None, overwrite: bool, resume: Path | None, key: str | None,
              binarize: float | None, scale: float | None, validation: float | None,
              validation_data: Path | None, fmt: str, quiet: bool, **options: Any) -> None:
    """Train an RBM on DATA (rows of 0/1 values: .npy, .npz, .csv, .txt) with CD-k or PCD.

    Metrics per epoch (reconstruction error, exact pseudo-log-likelihood and, when the
    smaller layer has <= 20 units, the exact log-likelihood) are stored in the model
    file's 'training' group and printed at the end. Ctrl-C finishes the current batch,
    writes a checkpoint to the output and exits with status 130; --resume continues it
    exactly. Exit status: 0 done, 1 error, 2 usage error, 130 interrupted (checkpoint written).
    """
    from . import training
    from .data import load_data
    from .report_train import TrainingProgress, print_metrics

    if output is None and resume is None:
        raise click.UsageError("give the model file to write with -o/--output.")
    if validation is not None and validation_data is not None:
        raise click.UsageError("give either --validation or --validation-data, not both.")
    options["validation"] = validation
    given = {k: v for k, v in options.items() if v is not None}
    if resume is None:
        settings = training.make_settings(**given)
        training.check_output(output, overwrite=overwrite)
    fmt_options = {"key": key, "binarize": binarize, "scale": scale}
    rows = load_data(data, **fmt_options)
    valid = load_data(validation_data, **fmt_options) if validation_data is not None else None
    data_info = {"file": str(data), "sha256": training.file_digest(data), **fmt_options}
    if validation_data is not None:
        data_info.update(validation_file=str(validation_data), validation_sha256=training.file_digest(validation_data))
    command = "fecli " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("fecli") else None

    def notify() -> None:
        _warn("interrupt: finishing the current batch and writing a checkpoint (Ctrl-C again to abort).")

    with training.StopOnSigint(notify) as stop, TrainingProgress(enabled=not quiet) as bar:
        common = dict(validation_data=valid, output=output, overwrite=overwrite, data_info=data_info,
                      command=command, progress=bar, on_epoch=bar.on_epoch, should_stop=stop)
        if resume is None:
            outcome = training.train(rows, settings, **common)
        else:
            outcome = training.resume(resume, rows, **common, **given)
    if not quiet:
        for text in outcome.warnings:
            _warn(text)
    where = outcome.output
    if outcome.interrupted:
        again = f"fecli train-rbm {data} --resume {where}" if where is not None else "(no output file)"
        _error(f"interrupted after epoch {outcome.epochs_done} (+{outcome.batches_done}/{outcome.n_batches} "
               f"batches) of {outcome.epochs}; checkpoint written to {where}. Continue with: {again}")
        sys.exit(130)
    title = (f"{where}: {outcome.model.n_visible}x{outcome.model.n_hidden} RBM, "
             f"{outcome.epochs_done} epochs in {outcome.wall_time_s:.1f} s")
    print_metrics(outcome.history, fmt, title, str(where))
    sys.exit(EXIT_OK)


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
    """Console entry point: one clear line for expected errors, tracebacks only with --debug."""
    from .errors import FecliError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("FECLI_DEBUG"))
    try:
        cli.main(args=args, prog_name="fecli", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("fecli: interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FecliError as exc:
        if debug:
            raise
        _error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("fecli: interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug: keep it visible, but one line unless --debug
        if debug:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback.")
        sys.exit(EXIT_FAILURE)
    sys.exit(EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
