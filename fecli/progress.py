"""Progress reporting protocol shared by the library and the CLI.

Long computations accept ``progress``: a callable ``progress(description, done, total)``
called from time to time. The library never draws anything itself; the CLI passes
a Rich progress bar (see :mod:`fecli.report`). ``None`` means no reporting.
"""

from __future__ import annotations

from typing import Callable, Optional

ProgressCallback = Optional[Callable[[str, float, float], None]]

