"""Reading the TOML input files (noise models, networks) with one kind of error message."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import QsimDistError


def read_toml(path: str | Path, what: str, error: type[QsimDistError]) -> dict[str, Any]:
    """The parsed TOML file ``path`` (a ``what``, e.g. "noise model"); every reason it cannot be
    read is one ``error`` line that names the file."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: {what} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: invalid TOML ({exc})") from None
