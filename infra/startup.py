"""Checks both daemons run before they start work (cheap, local, no network).

Invariant: a `.env` holding ENCRYPTION_KEY that group or others can access stops the daemon
with `InsecureEnvFileError` (a `ConfigError`: exit code 2, one line, no secret in it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from infra.config import ConfigError


class InsecureEnvFileError(ConfigError):
    """The env file is accessible by group or others."""


def env_file_path(environ: dict[str, str] | None = None) -> Path:
    """The env file the settings are read from (`PMCT_ENV_FILE`, default `.env`)."""
    env = os.environ if environ is None else environ
    return Path(env.get("PMCT_ENV_FILE", ".env"))


def check_env_file_permissions(path: Path | str) -> None:
    """Raise InsecureEnvFileError when `path` exists and group/others have any access to it.

    A missing file is fine (settings may come from the environment or systemd's
    EnvironmentFile, which systemd reads as root before dropping privileges).
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise InsecureEnvFileError(f"{p} is not a regular file")
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose:
        raise InsecureEnvFileError(
            f"{p} is accessible by group/others (mode {stat.S_IMODE(st.st_mode):04o}) and may hold "
            f"ENCRYPTION_KEY; run `chmod 600 {p}`"
        )
