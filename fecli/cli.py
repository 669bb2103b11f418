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

EXIT_OK, EXIT_FAILURE = 0, 1
METHOD_CHOICES = [*method_names(), "all"]


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
    for path in expand_models(models):
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


def method_selection(func=None, *, extra: tuple[str, ...] = (), extra_help: str = ""):
    """--method (repeatable), --beta and --seed: shared by every command that runs estimators.

    ``extra``: choices beyond the registry's ln Z methods (loglik's 'raise'), handled by the command.
    """
    if func is None:
        return lambda f: method_selection(f, extra=extra, extra_help=extra_help)
    choices = [*METHOD_CHOICES[:-1], *extra, METHOD_CHOICES[-1]]
    for option in reversed([
        click.option("-m", "--method", "methods", multiple=True, type=click.Choice(choices),
                     default=("auto",), show_default=True,
                     help="Estimator; repeat for several, 'all' for every ln Z method." + extra_help),
        click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature (> 0)."),
        click.option("--seed", type=int, default=None,
                     help="Seed of stochastic methods (same seed, same numbers)."),
    ]):
        func = option(func)
    return func


# ---- pt (and umbrella, its old name): the tempering ladder. Kept together; the shared
# ---- --chains, --samples, --burn-in, --sweeps, --schedule above also reach pt.
PT_OPTIONS = [
    click.option("--rungs", type=int, default=None,
                 help="pt: rungs of each ladder from the base model (t = 0) to the target (t = 1), placed for "
                      "even exchange rates during --burn-in.  [default: as many as give neighbours an exchange "
                      "rate of about 0.4]"),
    click.option("--windows", type=int, default=None,
                 help="umbrella (the old name of pt, kept for scripts; runs pt): the same as --rungs."),
]

#: Method-specific options, one list for every command that runs estimators. Each has
#: default=None (the library signature holds the default, repeated in the help text)
#: and is passed only to the selected methods that take it.
METHOD_OPTIONS = [
    click.option("--max-units", type=int, default=None,
                 help="exact: largest layer to enumerate.  [default: 30]"),
    click.option("--layer", type=click.Choice(["auto", "hidden", "visible"]), default=None,
                 help="exact: layer to enumerate.  [default: auto, the smaller]"),
    click.option("--tol", type=float, default=None,
                 help="mf/tap2/tap3/cumulant: stop when the stationarity residual of the magnetisations is "
                      "below this (> 0).  [default: 1e-07]"),
    click.option("--max-iter", type=int, default=None,
                 help="mf/tap2/tap3/cumulant: most fixed-point sweeps per start.  [default: 2000]"),
    click.option("--damping", type=float, default=None,
                 help="mf/tap2/tap3/cumulant: fraction of the old magnetisation kept per step, in (0, 1); "
                      "raised automatically for starts that oscillate.  [default: 0.3]"),
    click.option("--starts", type=int, default=None,
                 help="mf/tap2/tap3/cumulant: starting points (base rate and data rows with --data, else "
                      "sigma(a); the rest random).  [default: 8]"),
    click.option("--combine", type=click.Choice(["best", "logsumexp"]), default=None,
                 help="mf/tap2/tap3: the best fixed point, or the log-sum-exp over distinct ones.  "
                      "[default: best]"),
    click.option("--order", type=int, default=None,
                 help="cumulant: highest order of the series, 1 to 4 (1 = variational bound).  [default: 2]"),
    click.option("--reference", type=click.Choice(["mf", "tap", "base-rate"]), default=None,
                 help="cumulant: factorized reference q: mean-field or TAP3 fixed point, or the data's base "
                      "rate (needs --data).  [default: mf]"),
    click.option("--variant", type=click.Choice(["joint", "marginal"]), default=None,
                 help="cumulant: q over (v, h) with analytic cumulants, or q over v with hidden units summed "
                      "and sampled k-statistics.  [default: joint]"),
    click.option("--samples", type=int, default=None,
                 help="cumulant --variant marginal: exact samples of q; importance: proposal samples; "
                      "pt: recorded rounds per ladder (pt default: 4000).  [default: 10000]"),
    click.option("--chains", type=int, default=None,
                 help="ais, reverse-ais, ti: independent chains; pt: independent tempering ladders (>= 2); "
                      "loglik raise: reverse chains per example.  [default: 100; pt: 8; raise: 10]"),
    click.option("--steps", type=int, default=None,
                 help="ais, reverse-ais, raise: transitions between base model and target; ti: grid intervals.  "
                      "[default: 3000; ti: 200]"),
    click.option("--schedule", type=str, default=None,
                 help="ais, reverse-ais, raise, ti: spacing of the path, linear|sigmoid|sm08 "
                      "(Salakhutdinov & Murray's three pieces); pt: of its first ladder, before adaptation.  "
                      "[default: sm08; ti, pt: sigmoid]"),
    click.option("--sweeps", type=int, default=None,
                 help="ais, reverse-ais, raise: Gibbs sweeps per intermediate distribution; ti: per grid point; "
                      "pt: per chain and round.  [default: 1; ti: 20]"),
    click.option("--burn-in", type=int, default=None,
                 help="reverse-ais, ti: Gibbs sweeps at the target when exact samples are not available "
                      "(ti: for its downward chains); pt: rounds before recording, adapting the ladder first.  "
                      "[default: 2000; pt: 1000]"),
    click.option("--target-error", type=float, default=None,
                 help="auto: nats within which its two routes must agree (and each be that precise).  "
                      "[default: 0.5]"),
    *PT_OPTIONS,
]

#: --data for the methods that take data (starts, base rates); not on loglik, whose DATA is an argument.
DATA_OPTION = click.option(
    "--data", type=click.Path(path_type=Path), default=None,
    help="mf/tap2/tap3/cumulant: data file (.npy/.npz/.csv/.txt of 0/1 rows) for the base-rate and data-row "
         "starts and --reference base-rate; ais, reverse-ais, importance, ti, pt: the base model "
         "(proposal) becomes the data's base rate (pt also starts its chains from data rows).  [default: none; sampling methods start from the uniform distribution, mean field from sigma(beta a)]")


def method_options(func):
    for option in reversed(METHOD_OPTIONS):
        func = option(func)
    return func


def output_options(formats=("table", "json", "csv")):
    def decorate(func):
        for option in reversed([
            click.option("--format", "fmt", type=click.Choice(list(formats)), default="table", show_default=True,
                         help="table for people; json (one object per line) or csv for pipelines."),
            click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
                         help="Write results to this file (atomically) instead of stdout."),
            click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings on stderr."),
            click.option("--fail-fast", is_flag=True, help="Stop at the first model or method that fails."),
        ]):
            func = option(func)
        return func

    return decorate


#: In `compare`, a series method runs once per order so each partial sum keeps its own kind.
SERIES_ORDERS = {"cumulant": (1, 2, 3)}


class MethodPlan:
    """The runs to make (method + option overrides) and which options go to each.

    Checked once, before any work starts: an option that no selected method takes is an
    error. ``context`` holds values (e.g. loaded data) passed only to methods that take them.
    """

    def __init__(self, methods: tuple[str, ...], beta: float, seed: int | None, options: dict[str, Any],
                 *, context: dict[str, Any] | None = None, expand_series: bool = False,
                 budget: float | None = None, budget_for_auto: float | None = None):
        from .api import method_options as accepted_options
        from .errors import InvalidOptionError

        if "all" in methods:
            methods = tuple(method_names(aliases=False))
        self.methods = tuple(dict.fromkeys(methods))
        given = {k: v for k, v in options.items() if v is not None}
        self.accepted = {m: set(accepted_options(m)) for m in self.methods}
        unused = sorted(k for k in given if not any(k in acc for acc in self.accepted.values()))
        if unused:
            names = ", ".join("--" + k.replace("_", "-") for k in unused)
            raise InvalidOptionError(
                f"{names} does not apply to the selected method(s): {', '.join(self.methods)}."
            )
        common = {"beta": beta} if seed is None else {"beta": beta, "seed": seed}
        self.options = {**common, **(context or {}), **given}
        self.budget_share: dict[str, float] = {}
        if budget_for_auto is not None:
            self.options["budget"] = budget_for_auto
        if budget is not None:
            from .budget import budgeted_methods, check_budget

            check_budget(budget, self.methods, given)
            sampling = budgeted_methods(self.methods)
            self.budget_share = {m: budget / len(sampling) for m in sampling}
            if "auto" in self.methods:
                self.options["budget"] = budget
        self.runs: list[tuple[str, dict[str, Any]]] = []
        for method in self.methods:
            orders = SERIES_ORDERS.get(method, ()) if expand_series and "order" not in given else ()
            self.runs.extend((method, {"order": k}) for k in orders) if orders else self.runs.append((method, {}))

    def options_for(self, method: str, overrides: dict[str, Any], progress: Any) -> dict[str, Any]:
        chosen = {k: v for k, v in {**self.options, **overrides}.items() if k in self.accepted[method]}
        if "progress" in self.accepted[method]:
            chosen["progress"] = progress
        return chosen


class Emitter:
    """Streams JSON/CSV rows to stdout as they come; tables and --output files at the end."""

    def __init__(self, fmt: str, output: Path | None, fields: tuple[str, ...], table: Any):
        from . import report

        _check_output_path(output)
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


def run_methods(plan: MethodPlan, model: Any, path: Path, batch: Batch, quiet: bool):
    """Yield each method's Result for ``model``; failures are reported through ``batch``."""
    from . import report
    from .api import estimate as run_estimate
    from .errors import FecliError

    for method, overrides in plan.runs:
        label = method + "".join(f" {k} {v}" for k, v in overrides.items())
        with report.DelayedProgress(enabled=not quiet) as progress:
            try:
                options = plan.options_for(method, overrides, progress)
                if method in plan.budget_share:
                    from .budget import run_within

                    result = run_within(model, method, plan.budget_share[method], options)
                else:
                    result = run_estimate(model, method, **options)
            except FecliError as exc:
                batch.fail(f"{path} [{label}]: {exc}")
                continue
        if not quiet:
            for text in result.warnings:
                _warn(f"{path} [{label}]: {text}")
        yield result


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@method_selection
@output_options()
@method_options
@DATA_OPTION
@click.option("--budget", type=float, default=None,
              help="auto: seconds it may spend per model.  [default: 120]")
def estimate(models: tuple[Path, ...], methods: tuple[str, ...], beta: float, seed: int | None, fmt: str,
             output: Path | None, quiet: bool, fail_fast: bool, budget: float | None, **options: Any) -> None:
    """Estimate ln Z and the free energy of MODELS with one or more methods.

    \b
    Examples:
      fecli estimate model.h5                 # auto: exact if feasible, else two agreeing routes
      fecli estimate model.h5 -m ais -m tap --data train.npy
    """
    from . import report
    from .errors import FecliError
    from .io import load_model
    from .result import FIELDS

    if budget is not None and "auto" not in methods:
        from .errors import InvalidOptionError

        raise InvalidOptionError("--budget applies to --method auto (compare has its own --budget).")
    plan = MethodPlan(methods, beta, seed, options, budget_for_auto=budget)
    emitter = Emitter(fmt, output, FIELDS, report.results_table)
    batch = Batch(fail_fast)
    try:
        for path in expand_models(models):
            try:
                model = load_model(path)
            except FecliError as exc:
                batch.fail(str(exc))
                continue
            for result in run_methods(plan, model, path, batch, quiet):
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


estimate.help = (estimate.help or "") + "\n\n" + _method_help()


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@method_selection(extra=("raise",), extra_help=" 'raise': per-example stochastic lower bounds on ln p(v) "
                                                "by RAISE (no ln Z; takes --chains, --steps, --schedule, --sweeps).")
@output_options()
@click.option("--per-example", type=click.Path(path_type=Path), default=None,
              help="Also save ln p(v) of every row to this file (.npy, .npz, .csv or .txt, by extension).")
@click.option("--key", default=None, help="Array name inside an .npz data file.")
@click.option("--binarize", type=float, default=None, help="Threshold greyscale data: values > THRESHOLD (in the data's units, after --scale) become 1.")
@click.option("--scale", type=float, default=None, help="Divide data by this first (e.g. 255 for 0..255 images).")
@click.option("--alphabet", default=None,
              help="Potts models: DATA is aligned FASTA in this alphabet: protein, rna, dna or the symbols in "
                   "state order (gap included).")
@method_options
def loglik(model: Path, data: Path, methods: tuple[str, ...], beta: float, seed: int | None, fmt: str,
           output: Path | None, quiet: bool, fail_fast: bool, per_example: Path | None, key: str | None,
           binarize: float | None, scale: float | None, alphabet: str | None, **options: Any) -> None:
    """Average log-likelihood of the rows of DATA under MODEL: mean of -F(v) minus ln Z.

    ln Z comes from the chosen --method (exact by default) and its error carries through; a
    bound on ln Z becomes the opposite bound on the log-likelihood. --method raise instead
    estimates each row's ln p(v) by RAISE (a stochastic lower bound, no ln Z needed). DATA may
    be .npy, .npz, .csv or .txt, or '-' to read an .npy stream from stdin; rows hold the visible
    units' values (0/1, -1/+1 for spins, reals for Gaussian units, states 0..q-1 or FASTA for Potts
    units). For Gaussian visible units ln p(v) is a density (nats per unit volume of the data).
    """
    from . import report
    from .data import check_array_path, save_array
    from .errors import InvalidOptionError
    from .io import load_model
    from .layer_data import check_width, load_for
    from .loglik import FIELDS, from_log_z

    rbm = load_model(model)
    rows = load_for(rbm.visible, data, key=key, binarize=binarize, scale=scale, alphabet=alphabet)
    check_width(rows, rbm, str(data))
    raise_options, options = _split_raise(methods, options)
    methods = tuple(m for m in methods if m != "raise")
    plan = MethodPlan(methods, beta, seed, options, context={"data": rows}) if methods else None
    if per_example is not None:
        check_array_path(per_example, "--per-example file")
        _check_output_path(per_example)
        if len(plan.methods if plan else ()) + (raise_options is not None) > 1:
            raise InvalidOptionError("--per-example saves one method's values: choose a single --method.")
    emitter = Emitter(fmt, output, FIELDS, report.loglik_table)
    batch = Batch(fail_fast)

    def records():
        for result in run_methods(plan, rbm, model, batch, quiet) if plan else ():
            yield from_log_z(rbm, rows, result, str(data))
        if raise_options is not None:
            record = _run_raise(rbm, rows, str(data), model, beta, seed, raise_options, batch, quiet)
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


def _split_raise(methods: tuple[str, ...], options: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """For loglik: (RAISE's options or None when raise is not selected, the options left for the others).

    --chains/--steps/--schedule/--sweeps go to RAISE (--chains as its repeats per example) and
    also stay with the other methods that take them; any other option with raise alone is an error.
    """
    from .api import method_options as accepted_options
    from .errors import InvalidOptionError

    if "raise" not in methods:
        return None, options
    cli_names = {"chains": "repeats", "steps": "steps", "schedule": "schedule", "sweeps": "sweeps"}
    given = {k: v for k, v in options.items() if v is not None}
    raise_options = {cli_names[k]: v for k, v in given.items() if k in cli_names}
    others = [m for m in methods if m != "raise"]
    others = method_names(aliases=False) if "all" in others else others
    if not others and set(given) - set(cli_names):
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(set(given) - set(cli_names)))
        raise InvalidOptionError(f"{names} does not apply to the selected method(s): raise.")
    left = {k: v for k, v in options.items()
            if k not in cli_names or any(k in accepted_options(m) for m in others)}
    return raise_options, left


def _run_raise(rbm: Any, rows: Any, data_name: str, path: Path, beta: float, seed: int | None,
               options: dict[str, Any], batch: Batch, quiet: bool) -> Any:
    """loglik --method raise: the RAISE record, or None when it failed (reported through ``batch``)."""
    from . import report
    from .errors import FecliError
    from .loglik import raise_loglik

    with report.DelayedProgress(enabled=not quiet) as progress:
        try:
            record = raise_loglik(rbm, rows, data_name, beta=beta, seed=seed, progress=progress, **options)
        except FecliError as exc:
            batch.fail(f"{path} [raise]: {exc}")
            return None
    if not quiet:
        for text in record.warnings:
            _warn(f"{path} [raise]: {text}")
    return record


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-n", "n", type=int, required=True, help="Number of samples (rows of the output).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Visible samples of shape (N, n_visible): .npy, .npz, .csv or .txt, by extension; 0/1 for "
                   "bernoulli units (uint8 in .npy), -1/+1 for spins (int8), states for Potts units (uint8), "
                   "reals for Gaussian units (float64).")
@click.option("--method", type=click.Choice(["auto", "exact", "gibbs"]), default="auto", show_default=True,
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
def sample(model: Path, n: int, output: Path, method: str, beta: float, seed: int | None, hidden: Path | None,
           overwrite: bool, quiet: bool, **options: Any) -> None:
    """Draw N samples of the visible layer of MODEL and save them (.npy, .npz, .csv or .txt, by extension).

    Prints the output path on stdout and a summary (method, shape, time, seed) on stderr.
    Gibbs row r is round r // chains of chain r % chains.
    """
    from . import report
    from .errors import InvalidOptionError
    from .io import load_model
    from .data import save_array
    from .sampling import check_output, sample as draw

    given = {k: v for k, v in options.items() if v is not None}
    if given and method == "exact":
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InvalidOptionError(f"{names} applies to --method gibbs only.")
    for path in (output, hidden):
        if path is not None:
            check_output(path, overwrite)
    if hidden is not None and hidden.resolve() == output.resolve():
        raise InvalidOptionError("--hidden must name a different file from --output.")
    rbm = load_model(model)
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


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--methods", "method_list", default=None,
              help="Comma-separated methods to run.  [default: every method; exact only when feasible]")
@click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature (> 0).")
@click.option("--seed", type=int, default=None, help="Seed of stochastic methods (same seed, same numbers).")
@click.option("--budget", type=float, default=None,
              help="Seconds to spread evenly over the sampling methods (each sized by a short pilot run).")
@output_options()
@method_options
@DATA_OPTION
def compare(models: tuple[Path, ...], method_list: str | None, beta: float, seed: int | None, budget: float | None,
            fmt: str, output: Path | None, quiet: bool, fail_fast: bool, **options: Any) -> None:
    """Run several estimators on each of MODELS and show them side by side.

    Each model gets one table: ln Z, free energy, error, kind (exact, bound, estimate or
    approximation), time, and the difference to exact ln Z when it is known, otherwise to
    the tightest sandwich of lower and upper bounds, followed by a short verdict.
    """
    from . import report
    from .compare import ComparedRow, compare_results
    from .errors import FecliError, InvalidOptionError
    from .estimators import METHODS
    from .io import load_model

    if method_list is None:
        names = tuple(method_names(aliases=False))
        explicit = False
    else:
        names = tuple(n.strip() for n in method_list.split(",") if n.strip())
        unknown = [n for n in names if n not in METHODS]
        if unknown or not names:
            raise InvalidOptionError(
                f"unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'} in --methods; "
                f"valid methods are: {', '.join(METHODS)}."
            )
        explicit = True
    tables = fmt == "table"
    emitter = None if tables else Emitter(fmt, output, ComparedRow.FIELDS, None)
    if tables:
        _check_output_path(output)
    batch = Batch(fail_fast)
    rendered = []
    try:
        for path in expand_models(models):
            try:
                model = load_model(path)
            except FecliError as exc:
                batch.fail(str(exc))
                continue
            chosen = names
            exact = METHODS["exact"].feasibility(model)
            if not explicit and not exact.feasible:
                chosen = tuple(n for n in names if n != "exact")
                if not quiet:
                    _warn(f"{path}: exact enumeration skipped ({exact.note}).")
            plan = MethodPlan(chosen, beta, seed, options, expand_series=True, budget=budget)
            results = list(run_methods(plan, model, path, batch, quiet))
            if not results:
                continue
            comparison = compare_results(str(path), results)
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


def _check_figure(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    from .plots import check_figure_path

    return check_figure_path(value)


#: -o/--output of every plot command: checked (extension, folder) before any work.
figure_output = click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
                             callback=_check_figure, help="Figure file (.png, .pdf, .svg).")


@cli.group()
def plot() -> None:
    """Figures as PNG, PDF or SVG files (needs the extra: pip install 'fecli[plot]')."""


@plot.command("training")
@click.argument("model", type=click.Path(path_type=Path))
@figure_output
def plot_training(model: Path, output: Path) -> None:
    """Training curves stored in MODEL's training group (one panel per metric)."""
    from .io import load_model
    from .plots import plot_training as draw

    click.echo(draw(load_model(model), output))


@plot.command("filters")
@click.argument("model", type=click.Path(path_type=Path))
@figure_output
@click.option("--shape", required=True, help="Image shape of the visible layer, e.g. 28x28.")
@click.option("--max-filters", type=int, default=100, show_default=True, help="Show at most this many hidden units.")
def plot_filters(model: Path, output: Path, shape: str, max_filters: int) -> None:
    """Weights of each hidden unit as an image grid."""
    from .io import load_model
    from .plots import plot_filters as draw

    click.echo(draw(load_model(model), output, shape, max_filters))


@plot.command("results")
@click.argument("results", type=click.Path(path_type=Path))
@figure_output
def plot_results(results: Path, output: Path) -> None:
    """ln Z per method with 95% intervals, from JSON lines of 'fecli estimate --format json'."""
    from .plots import plot_results as draw, read_result_rows

    click.echo(draw(read_result_rows(results), output))


@cli.command("train-rbm")
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
@click.option("--method", type=click.Choice(["cd", "pcd", "tap2", "tap3"]), default=None,
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
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
              help="Training arithmetic; the saved model is float64.  [default: float32]")
@click.option("--monitor-every", type=int, default=None,
              help="Compute metrics every N epochs and after the last (0: never).  [default: 1]")
@click.option("--monitor-rows", type=int, default=None,
              help="Rows used for reconstruction error and pseudo-likelihood.  [default: 1000]")
@click.option("--checkpoint-every", type=int, default=None,
              help="Write the output every N epochs (0: only at the end or on Ctrl-C).  [default: 0]")
@click.option("--visible-type", type=click.Choice(["bernoulli", "spin", "gaussian", "potts"]), default=None,
              help="Visible units: 0/1, -1/+1 spins, real values, or Potts states.  [default: bernoulli]")
@click.option("--hidden-type", type=click.Choice(["bernoulli", "spin", "gaussian"]), default=None,
              help="Hidden units.  [default: bernoulli]")
@click.option("--states", type=int, default=None,
              help="potts: states per unit q (data hold 0..q-1).  [default: the alphabet's size, or max + 1]")
@click.option("--alphabet", default=None,
              help="potts: DATA is aligned FASTA in this alphabet: protein, rna, dna (gap '-' is state 0) or the "
                   "symbols in state order.")
@click.option("--standardize", is_flag=True,
              help="gaussian: centre each column and divide it by its standard deviation before training "
                   "(the means and deviations are stored in the training group).")
@click.option("--learn-precision", is_flag=True, default=None,
              help="gaussian: learn the precisions (else visible precision = 1 / the data's variance).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Metrics at the end on stdout: a table, or one JSON object per monitored epoch.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, epoch lines or warnings on stderr.")
def train_rbm(data: Path, output: Path | None, overwrite: bool, resume: Path | None, key: str | None,
              binarize: float | None, scale: float | None, validation: float | None,
              validation_data: Path | None, alphabet: str | None, standardize: bool, fmt: str, quiet: bool,
              **options: Any) -> None:
    """Train an RBM on DATA (rows of 0/1 values: .npy, .npz, .csv, .txt) with CD-k, PCD or EMF (TAP).

    Other unit types (--visible-type, --hidden-type) train with cd or pcd: spin data are -1/+1
    (0/1 rows are read as 2y - 1, and said so), Gaussian data real values (--standardize),
    Potts data integer states or aligned FASTA (--alphabet).

    Metrics per epoch (reconstruction error, exact pseudo-log-likelihood and, when the
    smaller layer has <= 20 units, the exact log-likelihood) are stored in the model
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
    fmt_options = {"key": key, "binarize": binarize, "scale": scale}
    typed = {"alphabet": alphabet, "states": states}
    rows, facts, note = load_training_rows(unit_type, data, **fmt_options, **typed, standardize=standardize)
    if facts.get("states") is not None and resume is None:
        settings.states = facts["states"]
    valid = None
    if validation_data is not None:
        scaling = (facts["standardize_mean"], facts["standardize_std"]) if standardize else False
        valid = load_training_rows(unit_type, validation_data, **fmt_options, **typed, standardize=scaling)[0]
    if note and not quiet:
        click.echo(f"fecli: {note}", err=True)
    from_stdin = str(data) == "-"
    data_info = {"file": "<stdin>" if from_stdin else str(data),
                 "sha256": None if from_stdin else training.file_digest(data), **fmt_options,
                 "alphabet": facts.get("alphabet"), "standardize": bool(standardize) or None,
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
        sys.exit(130)
    title = (f"{where}: {outcome.model.n_visible}x{outcome.model.n_hidden} {outcome.model.combination} RBM, "
             f"{outcome.epochs_done} epochs in {outcome.wall_time_s:.1f} s")
    print_metrics(outcome.history, fmt, title, str(where))
    if not quiet:
        click.echo(f"fecli: model written to {where}", err=True)
    sys.exit(EXIT_OK)


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
