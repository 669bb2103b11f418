"""scikit-learn's ``BernoulliRBM``, saved with skops (``.skops``) or, only with ``--allow-pickle``,
pickled or dumped with joblib.

BernoulliRBM's free energy (its ``_free_energy``) is
F(v) = -intercept_visible_ . v - sum_j softplus(intercept_hidden_j + (v components_^T)_j),
so fecli's W is ``components_`` transposed ((n_components, n_features) -> (n_visible, n_hidden)),
a = ``intercept_visible_``, b = ``intercept_hidden_``. A Pipeline is searched for its
BernoulliRBM step.

skops files are loaded with skops' trusted-type check: a file whose objects are not all types
skops trusts by default is refused with their names. A pickle can run any code when it is
loaded, so fecli never opens one unless asked (--allow-pickle) and then warns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from .common import float_array, read_head
from .spec import ReadOptions, Source

ATTRIBUTES = ("components_", "intercept_visible_", "intercept_hidden_")


def detect_skops(path: Path) -> bool:
    from .arrays import _zip_names

    names = _zip_names(path)
    return bool(names) and "schema.json" in names


#: Signatures of joblib's compressed dumps (zlib, gzip, bz2, xz, lzma, joblib's own 'ZF').
COMPRESSED = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"]\x00\x00",
              b"ZF")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".gz", ".z", ".bz2", ".xz", ".lzma")


def detect_pickle(path: Path) -> bool:
    """A pickle of protocol 2 or later (joblib's plain dumps are such pickles), or a compressed
    joblib dump (by its signature and a pickle/joblib file name)."""
    head = read_head(path, 6)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    return path.suffix.lower() in PICKLE_SUFFIXES and head.startswith(COMPRESSED)


def load_skops(path: Path, options: ReadOptions) -> Any:
    where = f"model file '{path}'"
    try:
        import skops.io as sio
    except ImportError:
        raise ModelFileError(f"{where} is a skops file; reading it needs skops: "
                             f"pip install 'fecli[formats]'.") from None
    try:
        untrusted = sio.get_untrusted_types(file=path)
        if untrusted:
            raise ModelFileError(f"{where} holds types skops does not trust by default ({', '.join(untrusted)}); "
                                 f"fecli reads skops files of scikit-learn's BernoulliRBM only.")
        estimator = sio.load(path, trusted=[])
    except ModelFileError:
        raise
    except Exception as exc:  # skops raises many types for damaged or foreign files
        raise ModelFileError(f"{where} cannot be read by skops ({str(exc).strip().splitlines()[0]}).") from None
    return _from_estimator(estimator, path, Source("skops", "scikit-learn BernoulliRBM (skops)"))


def load_pickle(path: Path, options: ReadOptions) -> Any:
    where = f"model file '{path}'"
    if not options.allow_pickle:
        raise ModelFileError(f"{where} is a Python pickle (e.g. a scikit-learn model saved with pickle or joblib); "
                             f"loading a pickle can run any code, so fecli reads one only with --allow-pickle, for a "
                             f"file you trust (or save the model with skops.io.dump and read the .skops file).")
    try:
        estimator = _unpickle(path)
    except ModuleNotFoundError as exc:  # the pickled object's library is not installed
        top = (exc.name or "").split(".")[0]
        if top == "sklearn":
            raise ModelFileError(f"{where} is a pickled scikit-learn model; reading it needs scikit-learn: "
                                 f"pip install 'fecli[formats]'.") from None
        raise ModelFileError(f"{where} is a pickle of an object from the Python module '{top}', which is not "
                             f"installed; fecli reads pickled scikit-learn BernoulliRBMs only.") from None
    except Exception as exc:  # anything can fail inside an unpickler
        raise ModelFileError(f"{where} cannot be unpickled ({type(exc).__name__}: {exc}).") from None
    source = Source("pickle", "scikit-learn BernoulliRBM (pickle)")
    source.warnings.append(f"{path}: read a pickle with --allow-pickle; loading a pickle runs whatever code it holds.")
    return _from_estimator(estimator, path, source)


def _unpickle(path: Path) -> Any:
    """The object in a pickle or joblib dump (joblib when installed: it also reads compressed dumps)."""
    try:
        import joblib
    except ImportError:
        import pickle

        with open(path, "rb") as fh:
            return pickle.load(fh)
    return joblib.load(path)


def _rbm_of(obj: Any) -> Any:
    """``obj`` itself when it has BernoulliRBM's fitted attributes, else the step of a Pipeline that has."""
    if all(hasattr(obj, name) for name in ATTRIBUTES):
        return obj
    for _, step in getattr(obj, "steps", []) or []:
        if all(hasattr(step, name) for name in ATTRIBUTES):
            return step
    return None


def _from_estimator(estimator: Any, path: Path, source: Source) -> Any:
    from ..model import RBM, check_parameters

    where = f"model file '{path}'"
    rbm = _rbm_of(estimator)
    if rbm is None:
        raise ModelFileError(f"{where} holds a {type(estimator).__name__}, not a fitted scikit-learn BernoulliRBM "
                             f"(no {', '.join(ATTRIBUTES)}).")
    components = float_array(rbm.components_, "components_", where)
    weights, visible_bias, hidden_bias = check_parameters(
        components.T, float_array(rbm.intercept_visible_, "intercept_visible_", where),
        float_array(rbm.intercept_hidden_, "intercept_hidden_", where), where, ModelFileError)
    source.conventions.append("weights transposed: components_ is (n_components, n_features) = (n_hidden, n_visible)")
    model = RBM(weights, visible_bias, hidden_bias, name=str(path))
    model.source = source
    return model
