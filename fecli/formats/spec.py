"""The light part of :mod:`fecli.formats` (no numpy, so that ``fecli --help`` stays fast): the
reading options, the provenance of a loaded model and the ``--names`` mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ModelFileError

#: The roles a --names mapping may give (fecli's dataset names).
ROLES = ("weights", "visible_bias", "hidden_bias")

@dataclass
class ReadOptions:
    """How to read a model file (the CLI's --model-format, --checkpoint, --names, --transpose,
    --allow-pickle). ``names`` maps roles (weights, visible_bias, hidden_bias) to keys in the
    file; ``transpose`` is None (decide from the bias lengths), True or False."""

    format: str = "auto"
    checkpoint: int | None = None
    names: dict[str, str] = field(default_factory=dict)
    transpose: bool | None = None
    allow_pickle: bool = False


@dataclass
class Source:
    """Where a model came from and what was converted to make it a plain fecli RBM."""

    format: str
    label: str
    conventions: list[str] = field(default_factory=list)
    log_z_offset: float = 0.0
    checkpoint: int | None = None
    checkpoints: list[int] | None = None
    format_version: Any = None
    warnings: list[str] = field(default_factory=list)
    #: The file read (without @K).
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "label": self.label, "format_version": self.format_version,
                "checkpoint": self.checkpoint, "checkpoints": self.checkpoints,
                "conventions": list(self.conventions), "log_z_offset": self.log_z_offset}


def parse_names(text: str | None) -> dict[str, str]:
    """``weights=KEY,visible_bias=KEY,hidden_bias=KEY`` (any subset) as a dict; ModelFileError
    naming the bad part otherwise."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for part in text.split(","):
        role, sep, key = part.partition("=")
        role, key = role.strip(), key.strip()
        if not sep or not key:
            raise ModelFileError(f"--names: '{part.strip()}' is not ROLE=KEY (e.g. weights=W,visible_bias=bv,"
                                 f"hidden_bias=bh).")
        if role not in ROLES:
            raise ModelFileError(f"--names: unknown role '{role}'; the roles are {', '.join(ROLES)}.")
        out[role] = key
    return out


def names_hint(mapping: Mapping[str, str]) -> str:
    """The --names text that reads ``mapping``."""
    return ",".join(f"{role}={mapping[role]}" for role in ROLES if role in mapping)


