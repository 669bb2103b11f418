"""The estimator registry: one line per method, read by the library and the CLI.

Each entry names the function that implements the method as "module:function";
the module is imported only when the method is used, so ``fecli --help`` stays
fast. An estimator function has the signature

    func(model: RBM, *, beta: float = 1.0, progress=None, **method_options) -> Result

and validates its own options (raising :class:`~fecli.errors.InvalidOptionError`).
A method may also name a ``feasibility(model) -> Feasibility`` function, used by
``fecli info`` to say whether and at what cost the method applies to a model.

Unit types: each method declares the (visible_type, hidden_type) combinations it supports
(``units``; see :mod:`fecli.estimators.units`), and ``load()`` returns the function wrapped so
that any other combination is refused with one line, spin layers run through their exact 0/1
equivalent, and Gaussian or Potts layers go to the method's ``layered`` implementation.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .units import ALL_UNITS, BINARY_UNITS, describe_units, dispatching


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
    #: The (visible_type, hidden_type) combinations the method supports.
    units: frozenset = ALL_UNITS
    #: "module:function" for models with Gaussian or Potts layers (same options); None: ``target`` itself.
    layered: str | None = None
    #: Another name for a registered method (same numbers); left out of ``--method all``.
    alias_of: str | None = None
    #: Whether ``--method all`` (and compare's default list) runs it; auto runs other methods itself.
    in_all: bool = True

    def load(self) -> Callable[..., Any]:
        layered = None if self.layered is None else _resolve(self.layered)
        return dispatching(self, _resolve(self.target), layered)

    def supports(self, model: Any) -> bool:
        return model.unit_types in self.units

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


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("auto", "fecli.estimators.auto:estimate_auto",
               "exact when feasible, else two independent routes (ais and pt/ti) run until they agree "
               "within --target-error or --budget is spent", in_all=False),
        Method(
            "exact",
            "fecli.estimators.exact:estimate_exact",
            "exact ln Z by Gray-code enumeration of the smaller layer",
            "fecli.estimators.exact:exact_feasibility",
        ),
        Method("mf", "fecli.estimators.meanfield:estimate_mf",
               "naive mean field: Gibbs variational lower bound, multi-start fixed points"),
        Method("tap", "fecli.estimators.meanfield:estimate_tap",
               "TAP/EMF free energy at its usual order, 2 (the Onsager term): tap2 by another name",
               alias_of="tap2"),
        Method("tap2", "fecli.estimators.meanfield:estimate_tap2",
               "TAP/EMF 2nd order (Onsager term), damped fixed points to --tol"),
        Method("tap3", "fecli.estimators.meanfield:estimate_tap3",
               "TAP/EMF 3rd order (coefficient 2/3), damped fixed points to --tol", units=BINARY_UNITS),
        Method("cumulant", "fecli.estimators.cumulant:estimate_cumulant",
               "cumulant series of U around a factorized q, orders 1-4 (joint analytic / marginal sampled)",
               layered="fecli.estimators.cumulant_layers:estimate_cumulant_layers"),
        Method("ais", "fecli.estimators.ais:ais",
               "annealed importance sampling (stochastic lower bound)",
               budget_option="steps", budget_minimum=50, layered="fecli.estimators.layered_sampling:ais"),
        Method("reverse-ais", "fecli.estimators.ais:reverse_ais",
               "reverse AIS from target samples (stochastic upper bound when exact samples exist)",
               budget_option="steps", budget_minimum=50, layered="fecli.estimators.layered_sampling:reverse_ais"),
        Method("importance", "fecli.estimators.importance:importance",
               "importance sampling with a factorised proposal (stochastic lower bound)",
               budget_option="samples", budget_minimum=200, layered="fecli.estimators.layered_sampling:importance"),
        Method("pt", "fecli.estimators.pt:pt",
               "parallel tempering on an adapted ladder, ln Z by BAR between neighbouring rungs",
               budget_option="samples", budget_minimum=100, units=BINARY_UNITS),
        Method("umbrella", "fecli.estimators.pt:umbrella",
               "the old name of pt (umbrella sampling with replica exchange), kept for scripts: runs pt",
               budget_option="samples", budget_minimum=100, alias_of="pt", units=BINARY_UNITS),
        Method("ti", "fecli.estimators.ti:ti",
               "thermodynamic integration along the annealing path",
               budget_option="steps", budget_minimum=10, units=BINARY_UNITS),
    )
}


def method_names(*, aliases: bool = True) -> list[str]:
    """Names of the registered methods, in registry order (``aliases=False``: what 'all' runs)."""
    return [m.name for m in METHODS.values() if aliases or (m.alias_of is None and m.in_all)]


def get_method(name: str) -> Method:
    from ..errors import InvalidOptionError

    try:
        return METHODS[name]
    except KeyError:
        raise InvalidOptionError(
            f"unknown method {name!r}; valid methods are: {', '.join(METHODS)}."
        ) from None
