"""Writing ENCRYPTION_KEY into a `.env` file without ever printing it (file mode 600)."""

from __future__ import annotations

import os
from pathlib import Path

from infra.config import read_env_file


def write_encryption_key(path: Path, rotate: bool = False) -> int:
    """Create or extend ENCRYPTION_KEY in `path`; returns how many keys it now holds.

    Without `rotate`, refuses (ValueError via InputError) when a key is already there.
    With `rotate`, the new key goes first (it encrypts from now on) and the old ones stay.
    """
    from crypto import generate_key
    from infra.errors import InputError
    from ops.inputs import check_output_file

    check_output_file(path, "--env-file")
    existing = read_env_file(path).get("ENCRYPTION_KEY", "").strip()
    if existing and not rotate:
        raise InputError(f"{path} already has ENCRYPTION_KEY; use --rotate to add a new key")
    if rotate and not existing:
        raise InputError(f"{path} has no ENCRYPTION_KEY to rotate; run without --rotate")
    keys = [generate_key()] + ([k for k in existing.split(",") if k.strip()] if existing else [])
    line = "ENCRYPTION_KEY=" + ",".join(keys)
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    except UnicodeDecodeError:
        raise InputError(f"--env-file {path} is not a UTF-8 text file") from None
    lines = [ln for ln in lines if not ln.strip().startswith("ENCRYPTION_KEY=")]
    lines.append(line)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return len(keys)
