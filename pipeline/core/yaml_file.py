"""Read a YAML input file so that every way it can fail is one line naming the file."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import UserError


def load_yaml_file(path: Path, kind: str = "YAML file", error: type[UserError] = UserError,
                   label: str = "") -> object:
    """The parsed YAML document of ``path``.

    ``kind`` names the file in messages ("claim YAML file"); ``label`` prefixes them
    (e.g. ``"--params: "``) and ``error`` is raised (``UsageError`` for a CLI option).
    """
    where = f"{label}{path}"
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{where}: no such {kind}") from None
    except IsADirectoryError:
        raise error(f"{where}: is a folder, expected a {kind}") from None
    except OSError as exc:
        raise error(f"{where}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"{where}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    except ValueError as exc:  # YAML timestamps are built as dates: 2023-13-45
        raise error(f"{where}: a date is not a valid calendar date ({exc})") from None
