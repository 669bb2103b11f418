"""The fecli command line: parse, call the library, render. No numerics here.

Heavy imports (numpy, numba, h5py, the estimators) happen inside the commands so
that ``fecli --help`` stays fast. The options of the methods are not written here:
they are generated from the declarations in the registry (fecli/estimators/__init__.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .cli_choice import Choice
from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .estimators import METHODS, RAISE, Method, method_names
from .formats import writable_formats
from .formats.cli_options import model_options
from .validation import DATA, Option, unknown_names_message

#: Idle worker threads that sleep instead of spinning: OpenMP (Numba's omp threading layer) and
#: OpenBLAS threads otherwise busy-wait after each parallel region (libgomp spins up to ~0.3 s,
#: OpenBLAS 2^28 cycles), which on a shared or busy machine takes the cores the work needs (measured
#: 2.5x wall time for 'estimate -m ais' with two busy processes on 2 cores). Set only where the user
#: has not chosen: see quiet_idle_threads.
PASSIVE_THREAD_SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}

#: The method name that selects every registered ln Z method.
ALL = "all"
#: The formats ``fecli convert --to`` writes.
WRITABLE_FORMATS = writable_formats()


class FecliGroup(click.Group):
    """Every error as one line on stderr with its exit status: usage errors (2), expected failures
    (FecliError, 1) and interrupts (130); tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import FecliError

        try:
            return super().invoke(ctx)
        except FecliError as exc:
            if ctx.params.get("debug") or os.environ.get("FECLI_DEBUG"):
                raise
            _error(str(exc))
            ctx.exit(exc.exit_code)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare 'fecli' or 'fecli plot': help, not an error
            click.echo(exc.ctx.get_help())
            code = EXIT_OK
        except click.UsageError as exc:
            _error(usage_line(exc))
            code = EXIT_USAGE
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("fecli: interrupted.", err=True)
            code = EXIT_INTERRUPTED
        code = code if isinstance(code, int) else EXIT_OK
        if standalone_mode:
            sys.exit(code)
        return code


def usage_line(exc: click.UsageError) -> str:
    """A usage error's one line, pointing at the command's --help."""
    message = exc.format_message()
    if exc.ctx is None:
        return message
    if message.endswith(("?", "?)")):  # a question (did you mean ...?) stays one
        return f"{message} See '{exc.ctx.command_path} --help'."
    return f"{message.rstrip('.')}; see '{exc.ctx.command_path} --help'."


@click.group(cls=FecliGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fecli")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """fecli: free energies (ln Z) of Restricted Boltzmann Machines.

    Models are fecli-rbm HDF5 files or other tools' files (DsysDML/rbms, RestrictedBoltzmannMachines.jl,
    scikit-learn, PyTorch, safetensors, npz: see the README). Results go to stdout,
    progress and messages to stderr. Exit status: 0 success, 1 failure, 2 usage error,
    130 interrupted.
    """


@cli.command(short_help="Describe MODELS: format, sizes, unit types, parameters, feasible methods.")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json (one object per line) for pipelines.")
@model_options
def info(models: tuple[Path, ...], fmt: str) -> None:
    """\b
    Examples:
      fecli info sample_models/digits_64x16.h5
      fecli info 'sample_models/*.h5' --format json

    Describe MODELS: format (and the conventions converted), sizes, unit types, parameter
    statistics, metadata, feasible estimators."""
    from . import report
    from .errors import FecliError
    from .formats.cli_options import open_from_cli
    from .info import describe

    failed = False
    out = report.make_console(sys.stdout)
    for path in expand_models(models):
        try:
            summary = describe(path, open_from_cli(path))
        except FecliError as exc:
            _error(str(exc))
            failed = True
            continue
        if fmt == "json":
            click.echo(report_json(summary))
        else:
            report.print_info(out, summary)
    sys.exit(EXIT_FAILURE if failed else EXIT_OK)


@cli.command(short_help="Write MODEL in another tool's format: fecli, rbms, rbmjl, npz or safetensors.")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The file to write.")
@click.option("--to", "to", type=Choice(WRITABLE_FORMATS), default=None,
              help="Format to write: fecli, rbms (DsysDML/rbms), rbmjl (RestrictedBoltzmannMachines.jl), npz or "
                   "safetensors.  [default: from OUTPUT's extension: .h5/.hdf5 fecli, .npz, .safetensors]")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@model_options
def convert(model: Path, output: Path, to: str | None, overwrite: bool) -> None:
    """\b
    Examples:
      fecli convert tests/fixtures/formats/rbms_bbrbm.h5@10 -o rbm10.safetensors
      fecli convert sample_models/weak_24x12.h5 -o weak.jl.h5 --to rbmjl

    Read MODEL in any format fecli reads and write it in another tool's format (the parameters
    exactly; conventions such as a transposed weight matrix are converted). Prints the path
    written on stdout and what was converted on stderr.
    """
    from .formats import convert_file
    from .formats.cli_options import read_options

    written, notes = convert_file(model, output, to=to, overwrite=overwrite, **read_options())
    for note in notes:
        click.echo(f"fecli: {note}", err=True)
    click.echo(str(written))


def report_json(summary: dict[str, Any]) -> str:
    import json

    from .result import _jsonable

    return json.dumps(_jsonable(summary), allow_nan=False)


# --------------------------------------------------------------------------- commands that run methods
class MethodNames(click.ParamType):
    """Method names, comma-separated (-m exact,mf) and/or repeated (-m exact -m mf); 'all' for every one."""

    name = "method"

    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "NAME[,NAME...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(n.strip() for n in str(value).split(",") if n.strip())
        unknown = [n for n in names if n not in self.choices]
        if unknown or not names:
            self.fail(unknown_names_message("method", unknown, list(self.choices)), param, ctx)
        return names



def chosen_methods(values: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    """The -m/--methods values, flattened in order."""
    return tuple(name for names in values for name in names)


class MethodCommand(click.Command):
    """A command that runs methods: its help lists them with the options each takes, and
    ``--help-method NAME`` shows one method's options with their constraints and defaults."""

    def __init__(self, *args: Any, entries: Callable[[], list[Method]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.entries = entries
        #: Declared options that are this command's arguments (loglik's DATA), not flags.
        self.arguments = {p.name for p in self.params if isinstance(p, click.Argument)}
        own = {p.name for p in self.params} | {"seed"}
        self.params.append(click.Option(
            ["--help-method"], type=Choice([*(m.name for m in entries()), ALL]), metavar="NAME",
            expose_value=False, is_eager=True, callback=self._show_method_help,
            help="Show the options and defaults of method NAME (or all), and exit."))
        self.params.extend(generated_options(entries(), exclude=tuple(own)))

    def flags_of(self, entry: Method) -> list[Option]:
        """The options of ``entry`` that this command takes as flags."""
        return [o for o in entry.options if o.cli and o.name not in self.arguments]

    def _show_method_help(self, ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        formatter = ctx.make_formatter()
        entries = self.entries() if value == ALL else [m for m in self.entries() if m.name == value]
        for entry in entries:
            write_method_help(formatter, entry, self.flags_of(entry))
        formatter.write_text(f"Run: {ctx.command_path} ... -m NAME [OPTIONS]; an option that none of the "
                             f"chosen methods takes is an error.")
        click.echo(formatter.getvalue().rstrip("\n"))
        ctx.exit(EXIT_OK)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(entry.name, entry.summary) for entry in self.entries()]
        with formatter.section(f"Methods (their options and defaults: {ctx.command_path} --help-method NAME)"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


def _click_type(option: Option) -> click.ParamType:
    if option.choices is not None:
        return Choice([str(c) for c in option.choices])
    if option.type == DATA:
        return click.Path(path_type=Path)
    return {int: click.INT, float: click.FLOAT, str: click.STRING}[option.type]


def generated_options(entries: list[Method], exclude: tuple[str, ...] = ()) -> list[click.Option]:
    """One hidden click option per declared option key of ``entries`` (the plain --help stays short;
    the Methods section and --help-method show them). Methods that share an option must declare
    the same type and choices for it: it is one flag."""
    by_key: dict[str, list[tuple[Method, Option]]] = {}
    for entry in entries:
        for option in entry.options:
            if option.cli and option.name not in exclude:
                by_key.setdefault(option.key, []).append((entry, option))
    params = []
    for key, pairs in by_key.items():
        first = pairs[0][1]
        clash = [e.name for e, o in pairs if (o.type, o.choices) != (first.type, first.choices)]
        if clash:
            raise RuntimeError(f"{first.cli_flag} is declared with different types or choices by: "
                               f"{pairs[0][0].name}, {', '.join(clash)}")
        takers = ", ".join(e.name for e, _ in pairs)
        params.append(click.Option([first.cli_flag, key], type=_click_type(first), default=None, hidden=True,
                                   help=f"{takers}: see --help-method NAME."))
    return params


def write_method_help(formatter: click.HelpFormatter, entry: Method, options: list[Option]) -> None:
    """One method's section of --help-method: summary, then each option with constraint and default."""
    formatter.write_text(f"{entry.name}: {entry.summary}")
    rows = []
    for option in options:
        metavar = "[" + "|".join(map(str, option.choices)) + "]" if option.choices else _metavar(option)
        constraint = option.describe_constraint()
        rows.append((f"{option.cli_flag} {metavar}", f"{option.help[0].upper()}{option.help[1:]}.  "
                                                     f"[{constraint + '; ' if constraint else ''}default: "
                                                     f"{option.describe_default()}]"))
    if rows:
        with formatter.indentation():
            formatter.write_dl(rows)
    formatter.write_paragraph()


def _metavar(option: Option) -> str:
    return {int: "INTEGER", float: "FLOAT", str: "TEXT", DATA: "FILE"}[option.type]


def seed_help(entries: list[Method]) -> str:
    """--seed's help with each method's default, from the declarations."""
    by_default: dict[str, list[str]] = {}
    for entry in entries:
        if entry.takes("seed"):
            by_default.setdefault(entry.option("seed").describe_default(), []).append(entry.name)
    defaults = "; ".join(f"{', '.join(names)}: {text}" for text, names in by_default.items())
    return f"Seed of the random streams (same seed, same numbers, whatever the thread count).  [default: {defaults}]"


def method_selection(*, choices: tuple[str, ...], default: tuple[str, ...] | None, default_text: str,
                     entries: list[Method]):
    """-m/--method/--methods (repeated and/or comma-separated), --beta and --seed: every command that runs methods."""
    def decorate(func):
        for option in reversed([
            click.option("-m", "--method", "--methods", "methods", multiple=True, type=MethodNames(choices),
                         default=default or (),
                         help=f"Methods to run: repeat -m or separate names with commas; '{ALL}' for every ln Z "
                              f"method.  [default: {default_text}]"),
            click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature (> 0)."),
            click.option("--seed", type=int, default=None, help=seed_help(entries)),
        ]):
            func = option(func)
        return func

    return decorate


def output_options(formats=("table", "json", "csv")):
    def decorate(func):
        for option in reversed([
            click.option("--format", "fmt", type=Choice(list(formats)), default="table", show_default=True,
                         help="table for people; json (one object per line) or csv for pipelines."),
            click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
                         help="Write results here (atomically); .json or .csv picks the format."),
            click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings on stderr."),
            click.option("--fail-fast", is_flag=True, help="Stop at the first model or method that fails."),
        ]):
            func = option(func)
        return func

    return decorate


def scheduler_option(func):
    """--scheduler (or FECLI_SCHEDULER): the command runs its sampling tasks on that Dask cluster
    (fecli.engine); without it nothing of Dask is imported."""
    import functools

    @functools.wraps(func)
    def run(*args: Any, scheduler: str | None = None, **kwargs: Any) -> Any:
        from .engine import connect

        with connect(scheduler):
            return func(*args, **kwargs)

    return click.option(
        "--scheduler", envvar="FECLI_SCHEDULER", default=None, metavar="ADDRESS|local:N",
        help="Run the sampling on Dask: a 'dask scheduler' address or local:N worker processes (same "
             "numbers).  [env: FECLI_SCHEDULER]")(run)


#: --data on estimate and compare (loglik's DATA is an argument, passed to the methods that take data).
DATA_OPTION = click.option(
    "--data", type=click.Path(path_type=Path), default=None,
    help="Data file (.npy/.npz/.csv/.txt/.fasta; rows in the model's units: 0/1, real values for Gaussian, states or FASTA for Potts) for the methods that take it; --help-method NAME says "
         "how each uses it.")


def ln_z_entries() -> list[Method]:
    return list(METHODS.values())


def loglik_entries() -> list[Method]:
    return [*METHODS.values(), RAISE]


#: -o suffixes that choose the format when --format is not given.
FORMAT_OF_SUFFIX = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv"}


def output_format(fmt: str, output: Path | None) -> str:
    """--format if given, else the format -o's extension names (results.json -> json), else fmt."""
    context = click.get_current_context(silent=True)
    given = context is not None and context.get_parameter_source("fmt") not in (
        None, click.core.ParameterSource.DEFAULT)
    if given or output is None:
        return fmt
    return FORMAT_OF_SUFFIX.get(output.suffix.lower(), fmt)


class Emitter:
    """Streams JSON/CSV rows to stdout as they come; tables and --output files at the end."""

    def __init__(self, fmt: str, output: Path | None, fields: tuple[str, ...], table: Any):
        from . import report

        _check_output_path(output)
        fmt = output_format(fmt, output)
        self.fmt, self.output, self.fields, self.table = fmt, output, fields, table
        self.records: list[Any] = []
        self.stream = output is None and fmt in ("json", "csv")
        if self.stream and fmt == "csv":
            click.echo(report.csv_header(fields))

    def add(self, record: Any) -> None:
        from . import report

        self.records.append(record)
        if self.stream:
            click.echo(report.json_line(record) if self.fmt == "json" else report.csv_line(record, self.fields))

    def close(self) -> None:
        from . import report

        if self.output is not None:
            from .atomic import write_text_atomically

            write_text_atomically(self.output, report.render(self.records, self.fmt, self.fields, self.table))
        elif self.fmt == "table" and self.records:
            report.make_console(sys.stdout).print(self.table(self.records))


class Batch:
    """Failure bookkeeping for many models: report, go on (or stop with --fail-fast), exit 1 at the end."""

    def __init__(self, fail_fast: bool):
        self.fail_fast = fail_fast
        self.failed = False

    def fail(self, message: str) -> None:
        _error(message)
        self.failed = True
        if self.fail_fast:
            raise _StopBatch

    def exit(self) -> None:
        sys.exit(EXIT_FAILURE if self.failed else EXIT_OK)


class _StopBatch(Exception):
    pass


def expand_models(paths: tuple[Path, ...]) -> list[Path]:
    """Paths as given, with quoted glob patterns (e.g. 'models/*.h5') expanded in sorted order."""
    import glob

    out: list[Path] = []
    for path in paths:
        text = str(path)
        if not path.exists() and any(c in text for c in "*?["):
            matches = sorted(glob.glob(text))
            out.extend(Path(m) for m in matches) if matches else out.append(path)
        else:
            out.append(path)
    return out


def results_of(plan: Any, model: Any, path: Path, batch: Batch, quiet: bool, runs: Any = None, pending: Any = None):
    """The library's run_methods with the CLI around it: progress bars, failures through ``batch``, warnings;
    ``pending``: the runs already submitted to a cluster (see models_and_runs)."""
    from . import report
    from .compare import label
    from .runner import run_methods

    def failed(run: Any, exc: Exception) -> None:
        batch.fail(f"{path} [{run.label}]: {exc}")

    for result in run_methods(plan, model, runs=runs, on_error=failed, pending=pending,
                              progress=lambda run: report.DelayedProgress(enabled=not quiet)):
        if not quiet:
            for text in result.warnings:
                _warn(f"{path} [{label(result)}]: {text}")
        yield result


def _load_or_fail(path: Path, batch: Batch) -> Any:
    from .errors import FecliError
    from .formats.cli_options import open_from_cli

    try:
        return open_from_cli(path)
    except FecliError as exc:
        batch.fail(str(exc))
        return None


def models_and_runs(paths: list[Path], plan: Any, load: Callable[[Path], Any]):
    """(path, model or None, pending) for each path, ``load`` giving the model (None: failed, and
    reported). Locally each model is loaded when the loop reaches it; on a cluster all are loaded
    first and, when the batch has at least as many runs as the cluster has worker threads, every run
    is submitted at once (runner.submit_batch)."""
    from .engine import backend
    from .runner import submit_batch

    if not backend().distributed:
        for path in paths:
            yield path, load(path), None
        return
    loaded = [(path, load(path)) for path in paths]
    pending = submit_batch(plan, [(model, plan.runs_for(model)[0]) for _, model in loaded if model is not None])
    handles = iter(pending or [])
    for path, model in loaded:
        yield path, model, next(handles) if pending and model is not None else None


@cli.command(cls=MethodCommand, entries=ln_z_entries,
             short_help="Estimate ln Z and the free energy of MODELS with one or more methods.")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@method_selection(choices=(*method_names(), ALL), default=("auto",), default_text="auto", entries=ln_z_entries())
@output_options()
@DATA_OPTION
@model_options(brief=True)
@scheduler_option
def estimate(models: tuple[Path, ...], methods: tuple[tuple[str, ...], ...], beta: float, seed: int | None, fmt: str,
             output: Path | None, quiet: bool, fail_fast: bool, **options: Any) -> None:
    """\b
    Examples:
      fecli estimate sample_models/digits_64x16.h5
      fecli estimate sample_models/weak_24x12.h5 -m exact,mf,ais --steps 500 --seed 1 --format json

    Estimate ln Z and the free energy F = -ln Z / beta of MODELS (fecli-rbm files or other tools'
    files, see --model-format; quoted globs are expanded) with each method. The default, auto, is exact enumeration when it is feasible,
    else two independent sampling routes run until they agree. Each result says whether it is
    exact, a bound, an estimate with an error bar, or an approximation.
    """
    from . import report
    from .result import FIELDS
    from .runner import MethodPlan

    plan = MethodPlan(chosen_methods(methods), beta=beta, seed=seed, options=options, flags=True)
    emitter = Emitter(fmt, output, FIELDS, report.results_table)
    batch = Batch(fail_fast)
    try:
        for path, model, pending in models_and_runs(expand_models(models), plan, lambda p: _load_or_fail(p, batch)):
            if model is not None:
                for result in results_of(plan, model, path, batch, quiet, pending=pending):
                    emitter.add(result)
    except _StopBatch:
        pass
    emitter.close()
    if fmt == "table" and output is None:
        _print_sandwiches(emitter.records)
    batch.exit()


def _print_sandwiches(results: list) -> None:
    """Below the table: forward <= ln Z <= reverse AIS and the gap, for models run with both."""
    if not any(r.method == "reverse-ais" for r in results):
        return
    from .estimators.ais import sandwich

    for s in sandwich(results):
        click.echo(s.describe())


@cli.command(cls=MethodCommand, entries=loglik_entries,
             short_help="Average log-likelihood of the rows of DATA under MODEL.")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@method_selection(choices=(*method_names(), RAISE.name, ALL), default=("auto",), default_text="auto",
                  entries=loglik_entries())
@output_options()
@click.option("--per-example", type=click.Path(path_type=Path), default=None,
              help="Also save ln p(v) of every row to this file (.npy, .npz, .csv or .txt, by extension).")
@click.option("--key", default=None, help="Array name inside an .npz data file.")
@click.option("--binarize", type=float, default=None,
              help="Binarize: values > THRESHOLD (after --scale) become 1, others 0.")
@click.option("--scale", type=float, default=None, help="Divide data by this first (e.g. 255 for 0..255 images).")
@click.option("--alphabet", default=None,
              help="Potts models: DATA is aligned FASTA in this alphabet: protein, rna, dna or the symbols in "
                   "state order (gap included).")
@model_options(brief=True)
@scheduler_option
def loglik(model: Path, data: Path, methods: tuple[tuple[str, ...], ...], beta: float, seed: int | None, fmt: str,
           output: Path | None, quiet: bool, fail_fast: bool, per_example: Path | None, key: str | None,
           binarize: float | None, scale: float | None, alphabet: str | None, **options: Any) -> None:
    """\b
    Examples:
      fecli loglik sample_models/digits_64x16.h5 sample_models/data/digits8x8_binary.npy -m exact,mf
      fecli loglik sample_models/digits_64x16.h5 sample_models/data/digits8x8_binary.npy -m exact,raise --chains 2 --steps 100 --seed 1

    Average log-likelihood of the rows of DATA under MODEL: the mean of -F(v) minus ln Z.
    ln Z comes from each --method (auto by default) and its error carries through; a bound
    on ln Z becomes the opposite bound on the log-likelihood. --method raise instead estimates
    each row's ln p(v) by RAISE (a stochastic lower bound, no ln Z needed). DATA may be .npy,
    .npz, .csv or .txt, or '-' to read an .npy stream from stdin; the methods that take data
    get DATA. Rows hold 0/1 values, -1/+1 (or 0/1) for spins, states or FASTA (--alphabet) for
    Potts units, reals for Gaussian units (ln p(v): density of DATA as given, a stored
    --standardize and its log-Jacobian applied).
    """
    from . import report
    from .data import check_array_path, save_array
    from .errors import InvalidOptionError
    from .formats.cli_options import open_from_cli
    from .layer_data import load_for_model
    from .loglik import FIELDS, from_log_z
    from .runner import MethodPlan

    plan = MethodPlan(chosen_methods(methods), beta=beta, seed=seed, options=options, extra={RAISE.name: RAISE},
                      context={"data": None}, flags=True)
    if per_example is not None:
        check_array_path(per_example, "--per-example file")
        _check_output_path(per_example)
        if len(plan.methods) > 1:
            raise InvalidOptionError("--per-example saves one method's values: choose a single --method.")
    rbm = open_from_cli(model)
    notes: list[str] = []
    rows = load_for_model(rbm, data, key=key, binarize=binarize, scale=scale, alphabet=alphabet, notes=notes)
    if not quiet:
        for note in notes:
            click.echo(f"fecli: {note}", err=True)
    plan.context = {"data": rows}
    emitter = Emitter(fmt, output, FIELDS, report.loglik_table)
    batch = Batch(fail_fast)

    def records():
        _, _, pending = next(models_and_runs([model], plan, lambda _: rbm))
        for result in results_of(plan, rbm, model, batch, quiet, pending=pending):
            yield from_log_z(rbm, rows, result, str(data))
        if RAISE.name in plan.methods:
            record = _run_raise(plan, rbm, rows, str(data), model, batch, quiet)
            if record is not None:
                yield record

    try:
        for record in records():
            emitter.add(record)
            if per_example is not None:
                save_array(per_example, record.per_example, key="log_likelihood")
    except _StopBatch:
        pass
    emitter.close()
    batch.exit()


def _run_raise(plan: Any, rbm: Any, rows: Any, data_name: str, path: Path, batch: Batch, quiet: bool) -> Any:
    """loglik --method raise: the RAISE record, or None when it failed (reported through ``batch``)."""
    from . import report
    from .errors import FecliError

    with report.DelayedProgress(enabled=not quiet) as progress:
        try:
            record = RAISE.load()(rbm, rows, data_name, **plan.options_for(RAISE.name, progress=progress))
        except FecliError as exc:
            batch.fail(f"{path} [{RAISE.name}]: {exc}")
            return None
    if not quiet:
        for text in record.warnings:
            _warn(f"{path} [{RAISE.name}]: {text}")
    return record


@cli.command(cls=MethodCommand, entries=ln_z_entries,
             short_help="Run several estimators on each of MODELS and show them side by side.")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@method_selection(choices=(*method_names(), ALL), default=None,
                  default_text="every method; exact only where it can enumerate", entries=ln_z_entries())
@click.option("--budget", type=float, default=None,
              help="Seconds to spread evenly over the sampling methods (each sized by a short pilot run).")
@output_options()
@DATA_OPTION
@model_options(brief=True)
@scheduler_option
def compare(models: tuple[Path, ...], methods: tuple[tuple[str, ...], ...], beta: float, seed: int | None,
            budget: float | None, fmt: str, output: Path | None, quiet: bool, fail_fast: bool, **options: Any) -> None:
    """\b
    Examples:
      fecli compare sample_models/weak_24x12.h5 -m exact,mf,tap3,cumulant,ais --steps 500 --seed 1
      fecli compare 'sample_models/*.h5' -m exact,mf,tap2,ais,reverse-ais --steps 300 --seed 1

    Run several estimators on each of MODELS and show them side by side. Each model gets one
    table: ln Z, free energy, error, kind (exact, bound, estimate or approximation), time, and
    the difference to exact ln Z when it is known, otherwise to the tightest sandwich of lower
    and upper bounds, followed by a short verdict. A series method (cumulant) runs once per order.
    """
    from . import report
    from .compare import ComparedRow, compare_results
    from .runner import compare_plan

    plan = compare_plan(chosen_methods(methods) or None, beta=beta, seed=seed, budget=budget, flags=True, **options)
    fmt = output_format(fmt, output)
    tables = fmt == "table"
    emitter = None if tables else Emitter(fmt, output, ComparedRow.FIELDS, None)
    if tables:
        _check_output_path(output)
    batch = Batch(fail_fast)
    rendered = []
    try:
        for path, model, pending in models_and_runs(expand_models(models), plan, lambda p: _load_or_fail(p, batch)):
            if model is None:
                continue
            runs, notes = plan.runs_for(model)
            if not quiet:
                for note in notes:
                    _warn(f"{path}: {note}")
            results = list(results_of(plan, model, path, batch, quiet, runs=runs, pending=pending))
            if not results:
                continue
            comparison = compare_results(model.name, results)
            if tables:
                rendered.append(report.comparison_table(comparison))
                if output is None:
                    console = report.make_console(sys.stdout)
                    console.print(rendered[-1])
                    console.print()
            else:
                for i, r in enumerate(results):
                    emitter.add(ComparedRow(r, comparison.reference.label, comparison.differences[i]))
    except _StopBatch:
        pass
    if tables and output is not None:
        from .atomic import write_text_atomically

        write_text_atomically(output, report.render_plain(rendered))
    elif emitter is not None:
        emitter.close()
    batch.exit()


@cli.command(short_help="Draw N samples of MODEL's visible layer and save them.")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-n", "n", type=int, required=True, help="Number of samples (rows of the output).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Visible samples of shape (N, n_visible): .npy, .npz, .csv or .txt, by extension; 0/1 for "
                   "bernoulli units (uint8 in .npy), -1/+1 for spins (int8), states for Potts units (uint8), "
                   "reals for Gaussian units (float64).")
@click.option("--method", type=Choice(["auto", "exact", "gibbs"]), default="auto", show_default=True,
              help="exact: i.i.d. samples (smaller layer <= 24 units); gibbs: block Gibbs chains; "
                   "auto: exact when the smaller layer has <= 20 units, else gibbs.")
@click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature (> 0).")
@click.option("--seed", type=int, default=None, help="Seed (same seed, same samples).  [default: random, printed]")
@click.option("--chains", type=int, default=None, help="gibbs: independent chains.  [default: 10]")
@click.option("--burn-in", type=int, default=None, help="gibbs: sweeps before the first kept sample.  [default: 1000]")
@click.option("--thin", type=int, default=None, help="gibbs: sweeps between kept samples of a chain.  [default: 10]")
@click.option("--hidden", type=click.Path(path_type=Path), default=None,
              help="Also save the hidden states (N, n_hidden) to this file, format by extension as for -o "
                   "(row i pairs with row i of the output).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary on stderr.")
@model_options
def sample(model: Path, n: int, output: Path, method: str, beta: float, seed: int | None, hidden: Path | None,
           overwrite: bool, quiet: bool, **options: Any) -> None:
    """\b
    Examples:
      fecli sample sample_models/digits_64x16.h5 -n 100 -o samples.npy --seed 1
      fecli sample sample_models/strong_24x12.h5 -n 50 -o chains.csv --method gibbs --chains 5 --seed 1

    Draw N samples of the visible layer of MODEL and save them (.npy, .npz, .csv or .txt, by extension).

    Prints the output path on stdout and a summary (method, shape, time, seed) on stderr.
    Gibbs row r is round r // chains of chain r % chains.
    """
    from . import report
    from .errors import InvalidOptionError
    from .formats.cli_options import open_from_cli
    from .data import save_array
    from .sampling import check_output, sample as draw
    from .validation import AT_LEAST_ONE, NON_NEGATIVE, check_int

    check_int("-n", n)
    for flag, allowed in (("--chains", AT_LEAST_ONE), ("--burn-in", NON_NEGATIVE), ("--thin", AT_LEAST_ONE)):
        value = options.get(flag[2:].replace("-", "_"))
        if value is not None:
            check_int(flag, value, allowed)
    given = {k: v for k, v in options.items() if v is not None}
    if given and method == "exact":
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InvalidOptionError(f"{names} applies to --method gibbs only.")
    for path in (output, hidden):
        if path is not None:
            check_output(path, overwrite)
    if hidden is not None and hidden.resolve() == output.resolve():
        raise InvalidOptionError("--hidden must name a different file from --output.")
    rbm = open_from_cli(model)
    with report.DelayedProgress(enabled=not quiet) as progress:
        result = draw(rbm, n, method=method, beta=beta, seed=seed, progress=progress, **given)
    save_array(output, result.v, key="samples")
    if hidden is not None:
        save_array(hidden, result.h, key="hidden")
    if not quiet:
        if given and result.method == "exact":
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            _warn(f"{names} ignored: --method auto chose exact sampling (use --method gibbs for Gibbs chains).")
        click.echo(f"fecli: {model}: {result.summary()}", err=True)
    click.echo(str(output))


def _check_figure(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    from .plots import check_figure_path

    return check_figure_path(value)


#: -o/--output of every plot command: checked (extension, folder) before any work.
figure_output = click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
                             callback=_check_figure, help="Figure file (.png, .pdf, .svg).")


@cli.group(short_help="Figures (PNG, PDF, SVG): training curves, filters, results, trajectories.")
def plot() -> None:
    """Figures as PNG, PDF or SVG files (needs the extra: pip install 'fecli[plot]')."""


@plot.command("training")
@click.argument("model", type=click.Path(path_type=Path))
@figure_output
@model_options
def plot_training(model: Path, output: Path) -> None:
    """Training curves stored in MODEL's training group (one panel per metric)."""
    from .formats.cli_options import open_from_cli
    from .plots import plot_training as draw

    click.echo(draw(open_from_cli(model), output))


@plot.command("filters")
@click.argument("model", type=click.Path(path_type=Path))
@figure_output
@click.option("--shape", required=True, help="Image shape of the visible layer, e.g. 28x28.")
@click.option("--max-filters", type=int, default=100, show_default=True, help="Show at most this many hidden units.")
@model_options
def plot_filters(model: Path, output: Path, shape: str, max_filters: int) -> None:
    """Weights of each hidden unit as an image grid.

    \b
    Example:
      fecli plot filters sample_models/digits_64x16.h5 -o filters.png --shape 8x8
    """
    from .formats.cli_options import open_from_cli
    from .plots import plot_filters as draw

    click.echo(draw(open_from_cli(model), output, shape, max_filters))


@plot.command("results")
@click.argument("results", type=click.Path(path_type=Path))
@figure_output
def plot_results(results: Path, output: Path) -> None:
    """ln Z per method with 95% intervals, from JSON lines of 'fecli estimate --format json'."""
    from .plots import plot_results as draw, read_result_rows

    click.echo(draw(read_result_rows(results), output))


@cli.command("train-rbm", short_help="Train an RBM on DATA with CD-k, PCD or EMF (TAP).")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Model file to write (at checkpoints and at the end).  [default: DATA's name with "
                   "'-rbm.h5' next to it, e.g. digits.npy -> digits-rbm.h5; with --resume: that file]")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--resume", type=click.Path(path_type=Path), default=None,
              help="Continue training from this model file (a checkpoint written by train-rbm).")
@click.option("--key", default=None, help="Array name inside an .npz data file.")
@click.option("--binarize", type=float, default=None, help="Threshold greyscale data: values > THRESHOLD (in the data's units, after --scale) become 1.")
@click.option("--scale", type=float, default=None, help="Divide the data by this first (e.g. 255), then --binarize.")
@click.option("--validation", type=float, default=None,
              help="Fraction of the rows held out for validation metrics.  [default: 0, none]")
@click.option("--validation-data", type=click.Path(path_type=Path), default=None,
              help="Held-out data file for validation metrics (same format options).")
@click.option("--hidden", type=int, default=None, help="Number of hidden units.  [default: 64]")
@click.option("--method", type=Choice(["cd", "pcd", "tap2", "tap3"]), default=None,
              help="cd: chains start at the data; pcd: persistent chains; tap2/tap3: EMF, persistent "
                   "TAP magnetisations of order 2/3 (Gabrie et al. 2015).  [default: pcd]")
@click.option("--k", type=int, default=None, help="Gibbs steps per update (cd, pcd).  [default: 1]")
@click.option("--tap-tol", type=float, default=None,
              help="tap2/tap3: TAP iteration stops when the stationarity residual is below this.  [default: 1e-05]")
@click.option("--tap-max-iter", type=int, default=None,
              help="tap2/tap3: at most this many TAP sweeps per update.  [default: 500]")
@click.option("--epochs", type=int, default=None, help="Total passes over the training data.  [default: 10]")
@click.option("--batch-size", type=int, default=None, help="Examples per update (and PCD chains).  [default: 20]")
@click.option("--lr", type=float, default=None, help="Learning rate.  [default: 0.05]")
@click.option("--lr-decay", type=float, default=None,
              help="Epoch e (from 0) uses lr / (1 + lr_decay * e).  [default: 0.1]")
@click.option("--momentum", type=float, default=None, help="Momentum in [0, 1).  [default: 0.5]")
@click.option("--weight-decay", type=float, default=None, help="L2 penalty on the weights.  [default: 0]")
@click.option("--seed", type=int, default=None, help="Seed (same seed, same model).  [default: random, stored]")
@click.option("--dtype", type=Choice(["float32", "float64"]), default=None,
              help="Training arithmetic; the saved model is float64.  [default: float32]")
@click.option("--monitor-every", type=int, default=None,
              help="Compute metrics every N epochs and after the last (0: never).  [default: 1]")
@click.option("--monitor-rows", type=int, default=None,
              help="Rows used for reconstruction error and pseudo-likelihood.  [default: 1000]")
@click.option("--checkpoint-every", type=int, default=None,
              help="Write the output every N epochs (0: only at the end or on Ctrl-C).  [default: 0]")
@click.option("--visible-type", type=Choice(["bernoulli", "spin", "gaussian", "potts"]), default=None,
              help="Visible units: 0/1, -1/+1 spins, real values, or Potts states.  [default: bernoulli]")
@click.option("--hidden-type", type=Choice(["bernoulli", "spin", "gaussian"]), default=None,
              help="Hidden units.  [default: bernoulli]")
@click.option("--states", type=int, default=None,
              help="potts: states per unit q (data hold 0..q-1).  [default: the alphabet's size, or max + 1]")
@click.option("--alphabet", default=None,
              help="potts: DATA is aligned FASTA in this alphabet: protein, rna, dna (gap '-' is state 0) or the "
                   "symbols in state order.")
@click.option("--standardize", is_flag=True,
              help="gaussian: centre each column and divide it by its standard deviation before training "
                   "(stored in the file: loglik, sample, trajectory and --data keep to the original units).")
@click.option("--learn-precision", is_flag=True, default=None,
              help="gaussian: learn the precisions (else visible precision = 1 / the data's variance).")
@click.option("--snapshots", type=int, default=None,
              help="Keep N parameter snapshots in the model file (update 0, then log-spaced updates up to the "
                   "last) for 'fecli trajectory': ln Z along training.  [default: 0, none]")
@click.option("--format", "fmt", type=Choice(["table", "json"]), default="table", show_default=True,
              help="Metrics at the end on stdout: a table, or one JSON object per monitored epoch.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, epoch lines or warnings on stderr.")
def train_rbm(data: Path, output: Path | None, overwrite: bool, resume: Path | None, key: str | None,
              binarize: float | None, scale: float | None, validation: float | None,
              validation_data: Path | None, alphabet: str | None, standardize: bool, fmt: str, quiet: bool,
              **options: Any) -> None:
    """\b
    Examples:
      fecli train-rbm sample_models/data/digits8x8_binary.npy
      fecli train-rbm sample_models/data/digits8x8_binary.npy -o digits16.h5 --hidden 16 --epochs 5 --seed 1

    Train an RBM on DATA (rows of 0/1 values: .npy, .npz, .csv, .txt) with CD-k, PCD or EMF (TAP).

    Other unit types (--visible-type, --hidden-type) train with cd or pcd: spin data are -1/+1
    (0/1 rows are read as 2y - 1, and said so), Gaussian data real values (--standardize),
    Potts data integer states or aligned FASTA (--alphabet).

    Metrics per epoch (reconstruction error, exact pseudo-log-likelihood and the
    log-likelihood: exact when the smaller layer has <= 20 units, otherwise with ln Z tracked
    along the run by sequential Monte Carlo) are stored in the model
    file's 'training' group and printed at the end. Ctrl-C finishes the current batch,
    writes a checkpoint to the output and exits with status 130; --resume continues it
    exactly. Exit status: 0 done, 1 error, 2 usage error, 130 interrupted (checkpoint written).
    """
    from . import training
    from .layer_data import load_training_rows
    from .report_train import TrainingProgress, print_metrics

    if output is None and resume is None:
        output = _default_model_path(data)
    if validation is not None and validation_data is not None:
        raise click.UsageError("give either --validation or --validation-data, not both.")
    options["validation"] = validation
    given = {k: v for k, v in options.items() if v is not None}
    if resume is None:
        settings = training.make_settings(**given)
        training.check_output(output, overwrite=overwrite)
        unit_type, states = settings.visible_type, settings.states
    else:
        stored = training.stored_unit_types(resume)
        unit_type, states = stored["visible_type"], stored["states"]
        standardize, scale = _resumed_transform(stored, standardize, scale)
    fmt_options = {"key": key, "binarize": binarize, "scale": scale}
    typed = {"alphabet": alphabet, "states": states}
    rows, facts, note = load_training_rows(unit_type, data, **fmt_options, **typed, standardize=standardize)
    if facts.get("states") is not None and resume is None:
        settings.states = facts["states"]
    valid = None
    if validation_data is not None:
        scaling = standardize if isinstance(standardize, tuple) else \
            (facts["standardize_mean"], facts["standardize_std"]) if standardize else False
        valid = load_training_rows(unit_type, validation_data, **fmt_options, **typed, standardize=scaling)[0]
    if note and not quiet:
        click.echo(f"fecli: {note}", err=True)
    from_stdin = str(data) == "-"
    data_info = {"file": "<stdin>" if from_stdin else str(data),
                 "sha256": None if from_stdin else training.file_digest(data), **fmt_options,
                 "alphabet": facts.get("alphabet"), "standardize": standardize is not False or None,
                 "standardize_mean": facts.get("standardize_mean"), "standardize_std": facts.get("standardize_std"),
                 "encoding": facts.get("encoding")}
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
        click.echo(f"fecli: interrupted after epoch {outcome.epochs_done} (+{outcome.batches_done}/{outcome.n_batches} "
               f"batches) of {outcome.epochs}; checkpoint written to {where}. Continue with: {again}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    title = (f"{where}: {outcome.model.n_visible}x{outcome.model.n_hidden} {outcome.model.combination} RBM, "
             f"{outcome.epochs_done} epochs in {outcome.wall_time_s:.1f} s")
    print_metrics(outcome.history, fmt, title, str(where))
    if not quiet:
        click.echo(f"fecli: model written to {where}", err=True)
    sys.exit(EXIT_OK)


def _resumed_transform(stored: dict[str, Any], standardize: bool, scale: float | None) -> tuple[Any, float | None]:
    """(standardize, scale) for data read on --resume of a Gaussian model: the checkpoint's stored
    column means and deviations and its --scale (the model's parameters are in those units), whether
    or not the flags are given again; a flag that would change them is refused."""
    from .errors import InvalidOptionError

    if stored["visible_type"] != "gaussian":
        return standardize, scale  # --standardize is refused for these types; --scale and --binarize as given
    if standardize and stored["standardize"] is None:
        raise InvalidOptionError("--standardize cannot change when resuming: the checkpoint was trained on data "
                                 "as given.")
    if scale is not None and stored["scale"] is not None and float(scale) != float(stored["scale"]):
        raise InvalidOptionError(f"--scale cannot change when resuming: the checkpoint was trained with --scale "
                                 f"{stored['scale']:g}.")
    if scale is not None and stored["scale"] is None:
        raise InvalidOptionError("--scale cannot change when resuming: the checkpoint was trained without it.")
    return (stored["standardize"] if stored["standardize"] is not None else False,
            scale if scale is not None else stored["scale"])


# --------------------------------------------------------------------------- ln Z along training
def declared_options(method: str, exclude: tuple[str, ...] = ()):
    """A decorator adding one visible click option per declared option of ``method`` (registry:
    help, constraint and default from the declaration), for commands built around one method."""
    entry = METHODS[method]

    def decorate(func):
        for option in reversed([o for o in entry.options if o.cli and o.name not in exclude]):
            constraint = option.describe_constraint()
            text = (f"{option.help[0].upper()}{option.help[1:]}.  "
                    f"[{constraint + '; ' if constraint else ''}default: {option.describe_default()}]")
            func = click.option(option.cli_flag, option.key, type=_click_type(option), default=None, help=text)(func)
        return func

    return decorate


@cli.command("trajectory", short_help="ln Z and data log-likelihoods at every training snapshot of MODEL.")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Training data: its mean log-likelihood -F(v) - ln Z at every snapshot.")
@click.option("--validation-data", type=click.Path(path_type=Path), default=None,
              help="Held-out data: the same for these rows.")
@click.option("--key", default=None, help="Array name inside .npz data files.")
@click.option("--binarize", type=float, default=None, help="Threshold greyscale data: values > THRESHOLD become 1.")
@click.option("--scale", type=float, default=None, help="Divide data by this first (e.g. 255 for 0..255 images).")
@declared_options("trajectory")
@click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature (> 0).")
@click.option("--format", "fmt", type=Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="table for people; json (one object per snapshot) or csv for pipelines.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the rows to this file (atomically) instead of stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or warnings on stderr.")
@model_options
@scheduler_option
def trajectory_command(model: Path, data: Path | None, validation_data: Path | None, key: str | None,
                       binarize: float | None, scale: float | None, beta: float, fmt: str,
                       output: Path | None, quiet: bool, **options: Any) -> None:
    """\b
    Examples:
      fecli trajectory tests/fixtures/formats/rbms_bbrbm.h5 --seed 1

    ln Z, its error and the data log-likelihoods at every training snapshot of MODEL.

    MODEL must hold snapshots ('fecli train-rbm --snapshots N', or the checkpoints of a
    DsysDML/rbms file). Particles start at the first
    snapshot (ln Z exact when its smaller layer has <= 20 units, else annealed from its
    factorised version) and are annealed from each snapshot to the next, parameters
    interpolated linearly, with Gibbs sweeps between steps; a replicate whose effective sample
    size falls below --resample-ess is resampled (sequential Monte Carlo). The error bar is the
    spread between --replicates independent runs.
    """
    from . import report
    from .estimators.trajectory import FIELDS

    _check_output_path(output)
    fmt_options = {"key": key, "binarize": binarize, "scale": scale}
    with report.DelayedProgress(enabled=not quiet) as progress:
        rows, warnings = _trajectory_rows(model, data, validation_data, options, beta, progress, fmt_options,
                                          None if quiet else lambda note: click.echo(f"fecli: {note}", err=True))
    if not quiet:
        for text in warnings:
            _warn(f"{model}: {text}")
    emitter = Emitter(fmt, output, FIELDS, report.trajectory_table)
    for row in rows:
        emitter.add(row)
    emitter.close()


def _trajectory_rows(model_path: Path, data: Path | None, validation_data: Path | None, options: dict[str, Any],
                     beta: float, progress: Any, fmt_options: dict[str, Any] | None = None,
                     on_note: Callable[[str], None] | None = None):
    """Load MODEL and the data, run the trajectory; (rows, warnings) (the library does the numerics)."""
    from .estimators.trajectory import trajectory_rows
    from .formats.cli_options import open_from_cli
    from .layer_data import load_for_model

    rbm = open_from_cli(model_path)
    arrays = []
    notes: list[str] = []
    for path in (data, validation_data):
        # rows in the visible layer's own type (0/1, spins, real values in the data's units, Potts states)
        arrays.append(None if path is None else load_for_model(rbm, path, **(fmt_options or {}), notes=notes))
    given = {k: v for k, v in options.items() if v is not None}
    rows, run = trajectory_rows(rbm, data=arrays[0], validation_data=arrays[1], beta=beta, progress=progress,
                                **given)
    if on_note is not None:
        for note in notes:
            on_note(note)
    return rows, run.warnings


@plot.command("trajectory")
@click.argument("source", type=click.Path(path_type=Path))
@figure_output
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Training data: adds its mean log-likelihood (when SOURCE is a model file).")
@click.option("--validation-data", type=click.Path(path_type=Path), default=None,
              help="Held-out data: adds its mean log-likelihood (when SOURCE is a model file).")
@click.option("--seed", type=int, default=None, help="Seed of the run (when SOURCE is a model file).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or warnings on stderr.")
@model_options
def plot_trajectory(source: Path, output: Path, data: Path | None, validation_data: Path | None,
                    seed: int | None, quiet: bool) -> None:
    """ln Z and log-likelihoods against updates (log axis) along training.

    SOURCE is a model file with snapshots (the trajectory runs with its defaults) or the JSON
    lines of 'fecli trajectory --format json' (plotted as they are).
    """
    from . import report
    from .plots import plot_trajectory as draw, read_trajectory_rows

    rows = read_trajectory_rows(source)
    if rows is None:
        with report.DelayedProgress(enabled=not quiet) as progress:
            rows, warnings = _trajectory_rows(source, data, validation_data, {"seed": seed}, 1.0, progress)
        if not quiet:
            for text in warnings:
                _warn(f"{source}: {text}")
        rows = [r.to_dict() for r in rows]
    elif data is not None or validation_data is not None or seed is not None:
        raise click.UsageError("--data, --validation-data and --seed apply when SOURCE is a model file.")
    click.echo(draw(rows, output))


@plot.command("ais-weights")
@click.argument("results", type=click.Path(path_type=Path))
@figure_output
def plot_ais_weights(results: Path, output: Path) -> None:
    """Histograms of AIS / reverse-AIS log-weights, from JSON lines of 'fecli estimate --format json'."""
    from .plots import plot_log_weights, read_result_rows

    click.echo(plot_log_weights(read_result_rows(results), output))


def _default_model_path(data: Path) -> Path:
    """Where ``train-rbm DATA`` writes without -o: next to the data, named after it."""
    if str(data) == "-":
        raise click.UsageError("with data from standard input, give the model file to write with -o/--output.")
    return data.with_name(data.stem + "-rbm.h5")


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


def quiet_idle_threads(environ: Any = os.environ) -> None:
    """Let idle OpenMP and OpenBLAS threads sleep (PASSIVE_THREAD_SETTINGS), keeping any value the
    user set. Effective only before numpy and Numba load their thread pools, hence at the CLI's start."""
    for name, value in PASSIVE_THREAD_SETTINGS.items():
        environ.setdefault(name, value)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line for any error, tracebacks only with --debug."""
    quiet_idle_threads()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or bool(os.environ.get("FECLI_DEBUG"))
    try:
        code = cli.main(args=args, prog_name="fecli", standalone_mode=False)  # usage errors, Ctrl-C: FecliGroup
    except Exception as exc:  # a bug: keep it visible, but one line unless --debug
        if debug:
            raise
        _error(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback.")
        sys.exit(EXIT_FAILURE)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
