"""The estimator registry: one entry per method, read by the library and the CLI.

Each entry names the function that implements the method as "module:function";
the module is imported only when the method is used, so ``fecli --help`` stays
fast. An estimator function has the signature

    func(model: RBM, *, beta: float = 1.0, progress=None, **method_options) -> Result

and each entry declares the method's options (:class:`~fecli.validation.Option`: name,
type, default, constraint, help). The function takes its defaults from the declaration,
:func:`fecli.estimate` checks values against it, and the CLI builds its flags from it.
A method may also name a ``feasibility(model) -> Feasibility`` function, used by
``fecli info`` to say whether and at what cost the method applies to a model.

Unit types: each method declares the (visible_type, hidden_type) combinations it supports
(``units``; see :mod:`fecli.estimators.units`), and ``load()`` returns the function wrapped so
that any other combination is refused with one line, spin layers run through their exact 0/1
equivalent, and Gaussian or Potts layers go to the method's ``layered`` implementation (which
takes the same options).

Adding a method's options: list ``Option(...)`` in its entry's ``options``, and in the
estimator module write ``DEFAULTS = METHODS["name"].defaults()`` and use
``DEFAULTS["option"]`` as the signature's default.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..validation import AT_LEAST_ONE, DATA, NON_NEGATIVE, OPEN_UNIT_INTERVAL, POSITIVE, Option, Range
from .units import ALL_UNITS, describe_units, dispatching

#: Keywords every estimator takes besides its declared options (checked by fecli.estimate itself).
COMMON_OPTIONS = ("beta", "progress")


@dataclass(frozen=True)
class Method:
    """A registered estimator."""

    name: str
    target: str
    summary: str
    feasibility_target: str | None = None
    #: For sampling methods: the option whose value the cost grows linearly with (used to
    #: fit a time budget) and the smallest value worth running.
    budget_option: str | None = None
    budget_minimum: int = 1
    #: Another name for a registered method (same numbers); left out of ``--method all``.
    alias_of: str | None = None
    #: Whether ``--method all`` (and compare's default list) runs it; auto runs other methods itself.
    in_all: bool = True
    #: The method's options, declared once (see the module docstring).
    options: tuple[Option, ...] = ()
    #: The (visible_type, hidden_type) combinations the method supports.
    units: frozenset = ALL_UNITS
    #: "module:function" for models with Gaussian or Potts layers (same options); None: ``target`` itself.
    layered: str | None = None
    #: Whether spin layers run through the model's 0/1 equivalent (False: the method gets the model as it
    #: is, e.g. trajectory, whose snapshots in the file are mapped one by one).
    binary_map: bool = True

    def load(self) -> Callable[..., Any]:
        layered = None if self.layered is None else _resolve(self.layered)
        return dispatching(self, _resolve(self.target), layered)

    def supports(self, model: Any) -> bool:
        return model.unit_types in self.units

    def option(self, name: str) -> Option:
        """The declaration of option ``name`` (KeyError when the method does not take it)."""
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(f"method {self.name!r} has no option {name!r}")

    def defaults(self) -> dict[str, Any]:
        """{option name: declared default}: what the estimator's signature uses."""
        return {option.name: option.default for option in self.options}

    def takes(self, name: str) -> bool:
        return any(option.name == name for option in self.options)

    def feasibility(self, model: Any) -> "Feasibility":
        if not self.supports(model):
            return Feasibility(False, f"{model.combination} units not supported (supports {describe_units(self.units)})")
        if self.feasibility_target is None:
            return Feasibility(True, "applies to any model")
        return _resolve(self.feasibility_target)(model)


@dataclass(frozen=True)
class Feasibility:
    """Whether a method applies to a model, with a short explanation of the cost."""

    feasible: bool
    note: str
    expected_seconds: float | None = None


def _resolve(target: str) -> Callable[..., Any]:
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)


# --------------------------------------------------------------------------- option declarations
# Each method lists its options here, once: name, type, default, constraint and help. The
# estimator's signature takes its defaults from these declarations (``DEFAULTS = ...defaults()``
# in the estimator module), fecli.estimate checks every value against them, and the CLI
# generates its flags and per-method help from them. Options shared by several methods are
# built by the small functions below so that their wording stays the same.

#: Spacings of an annealing path or a ladder of windows (see _sampling_common.make_schedule).
SCHEDULES = ("linear", "sigmoid", "sm08")
_SCHEDULE_HELP = "spacing of the path: linear, sigmoid, or sm08 (Salakhutdinov & Murray's three pieces)"
_FRESH_SEED = "a fresh random seed below 2^53, recorded in the results"


def _seed(default: int | None, what: str) -> Option:
    return Option("seed", int, default, f"seed of {what} (same seed, same numbers)", NON_NEGATIVE,
                  none_means=_FRESH_SEED)


def _base_data() -> Option:
    return Option("data", DATA, None, "data file (training rows in the model's units): the base model becomes the "
                  "data's base rate", none_means="the uniform distribution")


def _sampling(chains: int, steps: int, schedule: str, sweeps: int, *, chains_help: str = "independent chains",
              chains_min: int = 1, steps_help: str = "transitions from the base model to the target",
              sweeps_help: str = "Gibbs sweeps per intermediate distribution") -> tuple[Option, ...]:
    return (
        Option("chains", int, chains, chains_help, Range(chains_min)),
        Option("steps", int, steps, steps_help, AT_LEAST_ONE),
        Option("schedule", str, schedule, _SCHEDULE_HELP, choices=SCHEDULES),
        Option("sweeps", int, sweeps, sweeps_help, AT_LEAST_ONE),
    )


def _target_start(burn_in_help: str) -> tuple[Option, ...]:
    return (
        Option("burn_in", int, 2000, burn_in_help, AT_LEAST_ONE),
        Option("exact_max_units", int, 20, "start from exact target samples when the smaller layer has at most "
               "this many units", NON_NEGATIVE, cli=False),
    )


#: The fixed-point search of mf, tap2, tap3 (and of cumulant's reference).
_FIXED_POINT = (
    Option("tol", float, 1e-7, "stop when the stationarity residual of the magnetisations is below this", POSITIVE),
    Option("max_iter", int, 2000, "most fixed-point sweeps per start", AT_LEAST_ONE),
    Option("damping", float, 0.3, "fraction of the old magnetisation kept per step (raised automatically for "
           "starts that oscillate)", OPEN_UNIT_INTERVAL),
    Option("starts", int, 8, "starting points: the data's base rate and rows with --data, else sigma(beta a); "
           "the rest random", AT_LEAST_ONE),
    Option("data", DATA, None, "data file (training rows in the model's units) for the base-rate and data-row starts"),
    _seed(0, "the random starts"),
)
_MEAN_FIELD = (*_FIXED_POINT, Option("combine", str, "best", "value of the best fixed point, or the log-sum-exp "
                                     "over distinct ones (an approximation)", choices=("best", "logsumexp")))

_AIS = _sampling(100, 3000, "linear", 1)

#: pt and umbrella (its old name) besides the number of rungs.
_TEMPERING = (
    Option("chains", int, 8, "independent tempering ladders (their spread is part of the error bar)", Range(2)),
    Option("samples", int, 4000, "recorded rounds per ladder", AT_LEAST_ONE),
    Option("burn_in", int, 1000, "rounds before recording, adapting the ladder first", AT_LEAST_ONE),
    Option("sweeps", int, 1, "Gibbs sweeps of every chain per round", AT_LEAST_ONE),
    Option("schedule", str, "sigmoid", _SCHEDULE_HELP + "; of the first ladder, before adaptation",
           choices=SCHEDULES),
    Option("data", DATA, None, "data file (.npy/.npz/.csv/.txt of 0/1 rows): the base model becomes the data's "
           "base rate and chains start from data rows", none_means="the uniform distribution"),
    _seed(None, "the ladders"),
)

#: trajectory: sequential Monte Carlo along a model's training snapshots (fecli.estimators.trajectory).
_TRAJECTORY = (
    Option("chains", int, 32, "particles per replicate", AT_LEAST_ONE),
    Option("replicates", int, 8, "independent SMC runs (own particles and seeds); their spread is the error bar",
           Range(2)),
    Option("steps", int, 50, "interpolation steps between consecutive snapshots (and from the factorised start)",
           AT_LEAST_ONE),
    Option("sweeps", int, 1, "Gibbs sweeps of the interpolated RBM after each step", AT_LEAST_ONE),
    Option("resample_ess", float, 0.5, "resample a replicate when its ESS falls below this fraction of its "
           "particles (0: never, 1: every step)", Range(0, 1)),
    Option("resampling", str, "systematic", "resampling scheme", choices=("systematic", "multinomial")),
    Option("initial", str, "auto", "how the first snapshot's ln Z is found: by enumeration (exact samples) or by "
           "annealing from its factorised version (W = 0); auto: exact when its smaller layer has at most 20 units",
           choices=("auto", "exact", "factorised")),
    _seed(None, "the particles"),
)

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("auto", "fecli.estimators.auto:estimate_auto",
               "exact if feasible, else pt, ais and reverse-ais on its samples until two agree within "
               "--target-error or --budget is spent", in_all=False,
               options=(Option("target_error", float, 0.5, "nats within which two of its routes must agree (and each "
                               "be that precise)", POSITIVE),
                        Option("budget", float, 120.0, "seconds it may spend per model", POSITIVE),
                        Option("data", DATA, None, "data file (training rows in the model's units): 0/1 models "
                               "use its rows as states for the rigorous lower bound only (pt keeps its uniform "
                               "base, which covers every mode); other unit types fit their base model to it",
                               none_means="no data"),
                        _seed(None, "the routes"))),
        Method(
            "exact",
            "fecli.estimators.exact:estimate_exact",
            "exact ln Z by Gray-code enumeration of the smaller layer",
            "fecli.estimators.exact:exact_feasibility",
            options=(
                Option("max_units", int, 30, "largest layer to enumerate (2^k states); above it the run is "
                       "refused with the expected time", AT_LEAST_ONE),
                Option("layer", str, "auto", "layer to enumerate: auto is the smaller one (hidden on ties)",
                       choices=("auto", "hidden", "visible")),
            ),
        ),
        Method("mf", "fecli.estimators.meanfield:estimate_mf",
               "naive mean field: Gibbs variational lower bound, multi-start fixed points", options=_MEAN_FIELD),
        Method("tap", "fecli.estimators.meanfield:estimate_tap",
               "TAP/EMF free energy at its usual order, 2 (the Onsager term): tap2 by another name",
               alias_of="tap2", options=_MEAN_FIELD),
        Method("tap2", "fecli.estimators.meanfield:estimate_tap2",
               "TAP/EMF 2nd order (Onsager term), damped fixed points to --tol", options=_MEAN_FIELD),
        Method("tap3", "fecli.estimators.meanfield:estimate_tap3",
               "TAP/EMF 3rd order (coefficient 2/3), damped fixed points to --tol", options=_MEAN_FIELD),
        Method("cumulant", "fecli.estimators.cumulant:estimate_cumulant",
               "cumulant series of U around a factorized q, orders 1-4 (joint analytic / marginal sampled)",
               options=(
                   Option("order", int, 2, "highest order of the series (1 = the variational bound)", Range(1, 4)),
                   Option("reference", str, "mf", "factorized reference q: the mean-field or TAP3 fixed point, or "
                          "the data's base rate (needs --data)", choices=("mf", "tap", "base-rate")),
                   Option("variant", str, "joint", "q over (v, h) with analytic cumulants, or q over v with the "
                          "hidden units summed and sampled k-statistics", choices=("joint", "marginal")),
                   Option("samples", int, 10_000, "exact samples of q (--variant marginal)", Range(16)),
                   *_FIXED_POINT,
               ), layered="fecli.estimators.cumulant_layers:estimate_cumulant_layers"),
        Method("ais", "fecli.estimators.ais:ais",
               "annealed importance sampling (stochastic lower bound)",
               budget_option="steps", budget_minimum=50,
               options=(*_AIS, _base_data(), _seed(None, "the chains")),
               layered="fecli.estimators.layered_sampling:ais"),
        Method("reverse-ais", "fecli.estimators.ais:reverse_ais",
               "reverse AIS from target samples (stochastic upper bound when exact samples exist)",
               budget_option="steps", budget_minimum=50,
               options=(*_AIS, _base_data(),
                        *_target_start("when exact samples are out of reach: the start comes from parallel tempering with "
                                       "burn_in // 4 rounds of burn-in and as many recorded"),
                        _seed(None, "the chains")),
               layered="fecli.estimators.layered_sampling:reverse_ais"),
        Method("importance", "fecli.estimators.importance:importance",
               "importance sampling, mean-field proposal mixed with the uniform one (stochastic lower bound)",
               budget_option="samples", budget_minimum=200,
               options=(Option("samples", int, 10_000, "exact samples of the proposal", AT_LEAST_ONE),
                        _base_data(), _seed(None, "the proposal samples")),
               layered="fecli.estimators.layered_sampling:importance"),
        Method("pt", "fecli.estimators.pt:pt",
               "parallel tempering on an adapted ladder, ln Z by BAR between neighbouring rungs",
               budget_option="samples", budget_minimum=100,
               options=(Option("rungs", int, None, "rungs of each ladder from the base model (t = 0) to the target "
                               "(t = 1), placed for even exchange rates during --burn-in", Range(2, 256),
                               none_means="as many as give neighbours an exchange rate of about 0.4"),
                        *_TEMPERING)),
        Method("umbrella", "fecli.estimators.pt:umbrella",
               "the old name of pt (umbrella sampling with replica exchange), kept for scripts",
               budget_option="samples", budget_minimum=100, alias_of="pt",
               options=(Option("windows", int, None, "the same as pt's --rungs", Range(2, 256),
                               none_means="as many as give neighbours an exchange rate of about 0.4"),
                        *_TEMPERING)),
        Method("ti", "fecli.estimators.ti:ti",
               "thermodynamic integration along the annealing path",
               budget_option="steps", budget_minimum=10,
               options=(*_sampling(100, 200, "sigmoid", 20, chains_min=2,
                                   chains_help="independent chains, half moving up the path and half down",
                                   steps_help="grid intervals from the base model to the target",
                                   sweeps_help="Gibbs sweeps per grid point"),
                        _base_data(),
                        *_target_start("when exact samples are out of reach, the downward chains start from parallel "
                                       "tempering with burn_in // 4 rounds of burn-in and as many recorded"),
                        _seed(None, "the chains"))),
        Method("trajectory", "fecli.estimators.trajectory:trajectory",
               "SMC along the training snapshots stored in the file (train-rbm --snapshots N)",
               "fecli.estimators.trajectory:trajectory_feasibility", budget_option="chains", budget_minimum=4,
               in_all=False, options=_TRAJECTORY, binary_map=False),
    )
}

#: ``fecli loglik``'s per-example method: no ln Z, so not in METHODS, but its options are declared alike.
RAISE = Method("raise", "fecli.loglik:raise_loglik",
               "RAISE: per-example stochastic lower bounds on ln p(v) (no ln Z needed)",
               options=(Option("repeats", int, 10, "reverse chains per example", AT_LEAST_ONE, flag="--chains"),
                        *_AIS[1:], _seed(None, "the reverse chains")),
               binary_map=False)  # raise_loglik maps spin layers itself (rows and model together)


def method_names(*, aliases: bool = True) -> list[str]:
    """Names of the registered methods, in registry order (``aliases=False``: what 'all' runs)."""
    return [m.name for m in METHODS.values() if aliases or (m.alias_of is None and m.in_all)]


def get_method(name: str) -> Method:
    from ..errors import InvalidOptionError
    from ..validation import unknown_names_message

    try:
        return METHODS[name]
    except KeyError:
        raise InvalidOptionError(unknown_names_message("method", [name], list(METHODS))) from None
