"""Several methods on a model: the plan, the run policy of ``fecli compare``, and the loop.

A :class:`MethodPlan` is checked once, before any model is read: method names, every option
value against the declaration of each selected method that takes it, options that no selected
method takes, and the time budget. It then says which runs to make and which options go to
each. :func:`run_methods` makes the runs on one model; :func:`compare_model` is ``fecli
compare`` for Python users::

    from fecli import load_model
    from fecli.runner import MethodPlan, compare_model, run_methods

    model = load_model("sample_models/weak_24x12.h5")
    plan = MethodPlan(["exact", "mf", "ais"], seed=1, options={"steps": 500})
    results = list(run_methods(plan, model))
    comparison = compare_model(model, seed=1)  # every method; exact only when feasible
    print(comparison.verdict)
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Iterator, Mapping

from .errors import FecliError, InvalidOptionError
from .estimators import METHODS, Method, method_names
from .model import RBM
from .result import Result
from .validation import check_beta, check_seed, unknown_names_message

#: In ``compare``, a series method runs once per order so that each partial sum keeps its own kind.
SERIES_ORDERS = {"cumulant": (1, 2, 3)}
#: The name that selects every registered ln Z method.
ALL = "all"


@dataclass(frozen=True)
class Run:
    """One run of a plan: a method and the options that override the plan's for it (a series order)."""

    method: str
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return self.method + "".join(f" {k} {v}" for k, v in self.overrides)


def resolve_methods(names: Iterable[str], extra: Mapping[str, Method] | None = None) -> tuple[str, ...]:
    """``names`` in order without repeats, 'all' expanded to every registered method (aliases and
    auto left out: see :func:`fecli.estimators.method_names`).

    ``extra``: methods a command runs besides the registry's (loglik's 'raise').
    Raises InvalidOptionError naming the unknown names and the valid ones.
    """
    known = {**METHODS, **(extra or {})}
    out: list[str] = []
    for name in names:
        out.extend(method_names(aliases=False) if name == ALL else [name])
    unknown = [n for n in dict.fromkeys(out) if n not in known]
    if unknown or not out:
        raise InvalidOptionError(unknown_names_message("method", unknown, [*known, ALL]))
    return tuple(dict.fromkeys(out))


@dataclass
class MethodPlan:
    """The runs to make on each model and the options that go to each, checked once.

    methods : method names ('all' for every registered one); ``extra`` adds methods that the
        caller runs itself (their options are checked and routed, but :func:`run_methods` skips them).
    options : option values by key (None = not given). The key is the option's name, or for an
        option declared with another ``flag`` the flag's name (loglik's ``--chains`` is RAISE's
        ``repeats``).
    context : values (e.g. loaded data) passed only to the methods that declare them.
    expand_series : run each series method once per order of :data:`SERIES_ORDERS` (unless
        ``order`` is given).
    budget : seconds spread evenly over the sampling methods (see :mod:`fecli.budget`); a method
        that declares a ``budget`` option itself (auto) gets all of it.
    exact_when_feasible : leave exact out on models it cannot enumerate (compare's default).
    flags : name options by their command-line flags in error messages.
    """

    methods: tuple[str, ...]
    beta: float = 1.0
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Method] = field(default_factory=dict)
    expand_series: bool = False
    budget: float | None = None
    exact_when_feasible: bool = False
    flags: bool = False

    def __post_init__(self) -> None:
        self.methods = resolve_methods(self.methods, self.extra)
        self.entries = {m: {**METHODS, **self.extra}[m] for m in self.methods}
        given = {k: v for k, v in self.options.items() if v is not None}
        self.beta = given.pop("beta", self.beta)
        self.seed = given.pop("seed", self.seed)
        self.beta = check_beta(self.beta) if not self.flags else _relabel(check_beta, self.beta, "beta", "--beta")
        if self.seed is not None:
            self.seed = _relabel(check_seed, self.seed, "seed", "--seed") if self.flags else check_seed(self.seed)
        self._check_all_apply(given)
        self.chosen = {m: self._checked(entry, given) for m, entry in self.entries.items()}
        self.budget_share: dict[str, float] = {}
        if self.budget is not None:
            from .budget import budgeted_methods, check_budget

            check_budget(self.budget, self._ln_z_methods(), given)
            sampling = budgeted_methods(self._ln_z_methods())
            self.budget_share = {m: self.budget / len(sampling) for m in sampling} if sampling else {}
            for method, entry in self.entries.items():
                if entry.takes("budget"):
                    self.chosen[method]["budget"] = entry.option("budget").check(self.budget, "--budget")
        self.exact_when_feasible = self.exact_when_feasible and "max_units" not in given
        self.runs = [run for m in self._ln_z_methods() for run in self._runs_of(m, given)]

    # -- checks ------------------------------------------------------------------------------------
    def _label(self, option) -> str:
        return option.cli_flag if self.flags else option.name

    def _check_all_apply(self, given: dict[str, Any]) -> None:
        keys = {o.key for entry in self.entries.values() for o in entry.options}
        unused = sorted(k for k in given if k not in keys)
        if unused:
            names = ", ".join(("--" + k.replace("_", "-")) if self.flags else k for k in unused)
            raise InvalidOptionError(f"{names} does not apply to the selected method(s): {', '.join(self.methods)}.")

    def _checked(self, entry: Method, given: dict[str, Any]) -> dict[str, Any]:
        """The given options that ``entry`` takes, checked against its declarations, by library name."""
        return {o.name: o.check(given[o.key], self._label(o)) for o in entry.options
                if o.key in given and o.name != "seed"}

    def _ln_z_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in METHODS)

    def _runs_of(self, method: str, given: dict[str, Any]) -> list[Run]:
        orders = SERIES_ORDERS.get(method, ()) if self.expand_series and "order" not in given else ()
        return [Run(method, (("order", k),)) for k in orders] or [Run(method)]

    # -- what each run gets ------------------------------------------------------------------------
    def options_for(self, method: str, overrides: Iterable[tuple[str, Any]] = (), progress: Any = None
                    ) -> dict[str, Any]:
        """Keyword options for ``method``: beta, the seed and context values it declares, the given
        options it takes, ``overrides``, and ``progress``."""
        entry = self.entries[method]
        options: dict[str, Any] = {"beta": self.beta}
        if self.seed is not None and entry.takes("seed"):
            options["seed"] = self.seed
        options.update({k: v for k, v in self.context.items() if entry.takes(k)})
        options.update(self.chosen[method])
        options.update(overrides)
        if progress is not None:
            options["progress"] = progress
        return options

    def runs_for(self, model: RBM) -> tuple[list[Run], list[str]]:
        """The runs to make on ``model`` and notes on what was left out (compare's exact policy, and
        series orders past what the model's unit types have)."""
        runs, notes = self._series_runs_for(model)
        if not self.exact_when_feasible or "exact" not in self.methods:
            return runs, notes
        feasibility = METHODS["exact"].feasibility(model)
        if feasibility.feasible:
            return [r for r in runs if r.method != "auto"], notes
        runs = [r for r in runs if r.method != "exact"]
        note = f"exact enumeration skipped ({feasibility.note})"
        if any(r.method == "auto" for r in runs):
            note += "; auto's agreed routes are the reference"
        return runs, [*notes, note + "."]

    def _series_runs_for(self, model: RBM) -> tuple[list[Run], list[str]]:
        """The plan's runs without the series orders it expanded past the model's highest joint order."""
        from .estimators.cumulant import highest_joint_order

        top = highest_joint_order(model)
        expanded = {r for r in self.runs if r.method in SERIES_ORDERS and dict(r.overrides).get("order", 0) > top}
        if not self.expand_series or not expanded:
            return list(self.runs), []
        labels = ", ".join(r.label for r in self.runs if r in expanded)
        return ([r for r in self.runs if r not in expanded],
                [f"{labels} skipped (the joint series of a {model.combination} model stops at order {top})."])

    def run(self, model: RBM, run: Run, progress: Any = None) -> Result:
        """Make one run (within its share of the budget, if any)."""
        from .api import estimate

        options = self.options_for(run.method, run.overrides, progress)
        if run.method in self.budget_share:
            from .budget import run_within

            return run_within(model, run.method, self.budget_share[run.method], options)
        return estimate(model, run.method, **options)


def _relabel(check: Callable[[Any], Any], value: Any, name: str, flag: str) -> Any:
    try:
        return check(value)
    except InvalidOptionError as exc:
        raise InvalidOptionError(str(exc).replace(name, flag, 1)) from None


def run_methods(plan: MethodPlan, model: RBM, *, runs: list[Run] | None = None,
                progress: Callable[[Run], ContextManager[Any]] | None = None,
                on_error: Callable[[Run, FecliError], None] | None = None,
                pending: list | None = None) -> Iterator[Result]:
    """Yield the Result of each run of ``plan`` on ``model`` (``runs``: default ``plan.runs_for(model)``).

    progress : makes a context manager per run whose value is the estimator's progress callback.
    on_error : called with the run and the error when a run fails, and the loop goes on; without
        it the error propagates.
    pending : the runs already submitted as tasks (:func:`submit_batch`), one per run, in order.
    """
    if runs is None:
        runs = plan.runs_for(model)[0]
    for i, run in enumerate(runs):
        with progress(run) if progress is not None else nullcontext(None) as bar:
            try:
                if pending is None:
                    result = plan.run(model, run, bar)
                else:
                    result = pending[i].result(bar, "runs finished on the cluster")
                    if isinstance(result, FecliError):
                        raise result
            except FecliError as exc:
                if on_error is None:
                    raise
                on_error(run, exc)
                continue
        yield result


def run_task(plan: MethodPlan, task: tuple[RBM, Run], progress: Any = None) -> Result | FecliError:
    """One run of a batch as an engine task (fecli.engine): its Result, or the FecliError it raised
    (handed back as a value, so that the loop reports it like a local failure)."""
    model, run = task
    try:
        return plan.run(model, run)
    except FecliError as exc:
        return exc


def submit_batch(plan: MethodPlan, batch: list[tuple[RBM, list[Run]]]) -> list[list[Any]] | None:
    """On a Dask backend with at least as many runs in ``batch`` (models and their runs) as worker
    threads: every run submitted now as one task, and the handles per model, in run order, for
    :func:`run_methods`. Otherwise None: each run spreads its own chunks over the cluster when it
    comes (fewer runs than threads), or runs here (the local backend). Same numbers either way."""
    from . import engine

    backend = engine.backend()
    total = sum(len(runs) for _, runs in batch)
    if not backend.distributed or total == 0 or total < backend.threads:
        return None
    handles = backend.submit(run_task, plan, [(model, run) for model, runs in batch for run in runs])
    out, start = [], 0
    for _, runs in batch:
        out.append(handles[start:start + len(runs)])
        start += len(runs)
    return out


def compare_plan(methods: Iterable[str] | None = None, *, beta: float = 1.0, seed: int | None = None,
                 budget: float | None = None, flags: bool = False, **options: Any) -> MethodPlan:
    """``fecli compare``'s run policy: every registered method when ``methods`` is None, with exact as
    the reference on models it can enumerate and ``auto`` as the reference on the others; each series
    method once per order; ``budget`` seconds spread over the sampling methods."""
    return MethodPlan(tuple(["auto", *method_names(aliases=False)] if methods is None else methods), beta=beta, seed=seed,
                      options=options, expand_series=True, budget=budget, exact_when_feasible=methods is None,
                      flags=flags)


def compare_model(model: RBM, methods: Iterable[str] | None = None, *, beta: float = 1.0, seed: int | None = None,
                  budget: float | None = None, **options: Any):
    """Run ``methods`` (default: every method, see :func:`compare_plan`) on ``model`` and compare them.

    Returns a :class:`fecli.compare.Comparison` (reference, differences, verdict); ``notes`` say
    what was left out. A failing method raises (its error names the method).
    """
    from .compare import compare_results

    plan = compare_plan(methods, beta=beta, seed=seed, budget=budget, **options)
    runs, notes = plan.runs_for(model)
    comparison = compare_results(model.name, list(run_methods(plan, model, runs=runs)))
    comparison.notes = notes
    return comparison
