"""Aligned sequences (FASTA) as Potts states: one column per alignment position.

Alphabets (the gap symbol '-' is state 0, then the letters in this order):

    protein  -ACDEFGHIKLMNPQRSTVWY   (q = 21)
    rna      -ACGU                   (q = 5)
    dna      -ACGT                   (q = 5)

or any string of distinct symbols (state i = the i-th symbol; include the gap symbol if the
alignment has gaps). Letters are matched without regard to case for the named alphabets, and
'.' counts as a gap there (as in A2M files). Every sequence must have the alignment's length;
a symbol outside the alphabet is an error naming the sequence, the position and the symbol.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DataFileError

ALPHABETS = {
    "protein": "-ACDEFGHIKLMNPQRSTVWY",
    "rna": "-ACGU",
    "dna": "-ACGT",
}
FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fna", ".a2m", ".afa", ".aln")


def resolve_alphabet(alphabet: str) -> tuple[str, bool]:
    """(symbols, named): a named alphabet's symbols, or the given string (distinct symbols, at least 2)."""
    if alphabet in ALPHABETS:
        return ALPHABETS[alphabet], True
    if len(alphabet) < 2 or len(set(alphabet)) != len(alphabet) or any(c.isspace() for c in alphabet):
        raise DataFileError(f"alphabet {alphabet!r} must be protein, rna, dna or a string of at least 2 distinct "
                            f"symbols without spaces.")
    return alphabet, False


def read_fasta(path: str | os.PathLike, alphabet: str) -> np.ndarray:
    """Aligned sequences of ``path`` as Potts states (n_sequences, length), float64 (see the module docstring)."""
    symbols, named = resolve_alphabet(alphabet)
    path = Path(path)
    where = f"FASTA file '{path}'"
    if not path.exists():
        raise DataFileError(f"{where} does not exist.")
    names: list[str] = []
    seqs: list[list[str]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    names.append(line[1:].split()[0] if line[1:].strip() else f"#{len(names) + 1}")
                    seqs.append([])
                elif not seqs:
                    raise DataFileError(f"{where} does not start with a '>' header line.")
                else:
                    seqs[-1].append(line)
    except OSError as exc:
        raise DataFileError(f"{where} cannot be read ({exc}).") from exc
    if not seqs:
        raise DataFileError(f"{where} holds no sequences.")
    table = {c: i for i, c in enumerate(symbols)}
    if named:
        table.update({c.lower(): i for c, i in list(table.items())})
        table.setdefault(".", table["-"])
    length = None
    out = []
    for name, parts in zip(names, seqs):
        seq = "".join(parts)
        if length is None:
            length = len(seq)
        elif len(seq) != length:
            raise DataFileError(f"{where}: sequence '{name}' has length {len(seq)}, but the first has {length}; "
                                f"the sequences must be aligned (same length).")
        try:
            out.append([table[c] for c in seq])
        except KeyError:
            pos = next(i for i, c in enumerate(seq) if c not in table)
            raise DataFileError(f"{where}: sequence '{name}' has symbol {seq[pos]!r} at position {pos + 1}, which is "
                                f"not in the alphabet {symbols!r}.") from None
    if not length:
        raise DataFileError(f"{where} holds empty sequences.")
    return np.asarray(out, dtype=np.float64)


def is_fasta(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in FASTA_SUFFIXES
