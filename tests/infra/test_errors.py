"""The one error tree: every error class fits in it, the drawing is true, exit codes follow it."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import infra.errors as errors_module
from copying.context import RetryLater
from copying.orders import SkipCopy
from copying.tiers import TierLimitError
from infra.errors import (
    ConfigError,
    CryptoError,
    IllegalTransition,
    InputError,
    MissingKeyError,
    OrderError,
    PMCTError,
    VenueError,
    exit_code_for,
)
from infra.logs import register_secret
from infra.startup import InsecureEnvFileError
from tests.support.paths import ROOT
from wire.amounts import OrderMathError
from wire.auth import InvalidPrivateKey
from wire.errors import ApiError, ParseError, PolymarketError, RateLimitError, RestrictedError, TransportError
from wire.signing import OrderSigningError

PACKAGES = ("infra", "wire", "copying", "ops")
TOP_MODULES = ("crypto", "models", "polymarket_client", "smart_pricing", "watcher", "executor")
# Outside the tree on purpose (each one is explained in the infra.errors drawing).
OUTSIDE_THE_TREE = {"SkipCopy", "RetryLater", "ReorgInFlight", "_Shrink"}


def _application_modules() -> list[str]:
    names = list(TOP_MODULES)
    for package in PACKAGES:
        names += [f"{package}.{p.stem}" for p in sorted((ROOT / package).glob("*.py"))
                  if p.stem != "__init__"]
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined (not imported) in the application's modules."""
    found: dict[str, type[BaseException]] = {}
    for name in _application_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == name):
                found[f"{name}.{attr}"] = value
    return found


def test_the_scan_sees_the_error_classes() -> None:
    """The class scan finds the classes of every layer (else the next test proves nothing)."""
    found = _exception_classes()
    for qualified in ("infra.errors.InputError", "wire.errors.ApiError", "copying.tiers.TierLimitError",
                      "wire.amounts.OrderMathError", "infra.startup.InsecureEnvFileError",
                      "copying.orders.SkipCopy"):
        assert qualified in found, qualified


def test_every_application_error_is_in_the_tree() -> None:
    """Each exception class of infra, wire, copying, ops and the top modules is a PMCTError."""
    stray = [name for name, cls in _exception_classes().items()
             if not issubclass(cls, PMCTError) and cls.__name__ not in OUTSIDE_THE_TREE]
    assert stray == []


def test_the_source_defines_no_other_exception_roots() -> None:
    """No `class X(Exception)` / `(ValueError)` etc. outside the tree's own module (source scan).

    Catches classes that an import-time scan cannot see (defined inside functions).
    """
    builtin_roots = {"Exception", "BaseException", "ValueError", "RuntimeError", "TypeError",
                     "KeyError", "LookupError", "OSError", "ArithmeticError"}
    offenders = []
    for name in _application_modules():
        if name == "infra.errors":
            continue
        path = ROOT / (name.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name not in OUTSIDE_THE_TREE:
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & builtin_roots:
                    offenders.append(f"{name}.{node.name}({', '.join(sorted(bases))})")
    assert offenders == []


def test_the_drawing_names_every_class_and_its_module() -> None:
    """The comment at the top of infra/errors.py is the truth: each tree class with its module."""
    drawing = errors_module.__doc__ or ""
    for qualified, cls in _exception_classes().items():
        module = qualified.rsplit(".", 1)[0]
        if issubclass(cls, PMCTError) and cls.__module__ not in ("wire.errors",):
            assert cls.__name__ in drawing, cls.__name__
            assert module in drawing, (cls.__name__, module)
    for cls in (PolymarketError, TransportError, ApiError, RateLimitError, RestrictedError, ParseError):
        assert cls.__name__ in drawing
    for name in OUTSIDE_THE_TREE:
        assert name in drawing, name


def test_the_shape_of_the_tree() -> None:
    """The branches are where the drawing puts them; ValueError stays a base where callers need it."""
    assert issubclass(ConfigError, InputError) and issubclass(InsecureEnvFileError, ConfigError)
    assert issubclass(MissingKeyError, CryptoError) and issubclass(MissingKeyError, ConfigError)
    assert issubclass(TierLimitError, InputError) and issubclass(InvalidPrivateKey, InputError)
    assert issubclass(PolymarketError, VenueError)
    assert issubclass(OrderMathError, OrderError) and issubclass(OrderSigningError, OrderError)
    for cls in (InputError, OrderMathError, OrderSigningError, InvalidPrivateKey):
        assert issubclass(cls, ValueError), cls
    assert issubclass(IllegalTransition, PMCTError) and issubclass(IllegalTransition, RuntimeError)
    assert not issubclass(SkipCopy, PMCTError) and not issubclass(RetryLater, PMCTError)


@pytest.mark.parametrize(("exc", "code"), [
    (InputError("x"), 2), (ConfigError("x"), 2), (InsecureEnvFileError("x"), 2),
    (MissingKeyError("x"), 2), (TierLimitError("x"), 2), (InvalidPrivateKey("x"), 2),
    (CryptoError("x"), 1), (VenueError("x"), 1), (ApiError(500, "x"), 1), (ParseError("x"), 1),
    (OrderMathError("x"), 1), (IllegalTransition("x"), 1), (RuntimeError("x"), 1),
    (ValueError("x"), 1), (KeyError("x"), 1),
])
def test_exit_codes_come_from_the_tree(exc: BaseException, code: int) -> None:
    """InputError and its subclasses exit 2; everything else exits 1."""
    assert exit_code_for(exc) == code


# --- the CLI's handler ------------------------------------------------------------------------

@pytest.fixture
def failing_stats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[BaseException]:
    """`admin stats` raises whatever the test puts in the returned list (no database needed)."""
    raised: list[BaseException] = []

    class _Session:
        def __enter__(self) -> _Session:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    def boom(_session: object) -> dict[str, object]:
        raise raised[0]

    import ops.cli
    import ops.stats

    monkeypatch.setenv("PMCT_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setattr(ops.stats, "collect_stats", boom)
    monkeypatch.setattr(ops.cli._Context, "session", lambda self: _Session())
    return raised


@pytest.mark.parametrize(("exc", "code", "text"), [
    (InputError("bad flag"), 2, "error: bad flag"),
    (TierLimitError("tier pro allows 1"), 2, "error: tier pro allows 1"),
    (ConfigError("LOG_LEVEL must be one of"), 2, "error: LOG_LEVEL must be one of"),
    (MissingKeyError("ENCRYPTION_KEY is not set"), 2, "error: ENCRYPTION_KEY is not set"),
    (CryptoError("cannot decrypt"), 1, "error: cannot decrypt"),
    (ApiError(503, "halted", route="/order"), 1, "error: Polymarket request failed: HTTP 503"),
    (IllegalTransition("copy order 1: LIVE -> QUEUED"), 1, "error: copy order 1: LIVE -> QUEUED"),
    (RuntimeError("boom\nsecond line"), 1, "error: unexpected failure: RuntimeError: boom"),
    (KeyError("k"), 1, "error: unexpected failure: KeyError: 'k'"),
])
def test_cli_maps_the_tree_to_exit_codes_with_one_line(failing_stats: list[BaseException],
                                                       exc: BaseException, code: int, text: str) -> None:
    """Whatever a command raises: the tree's exit code and one `error:` line, no traceback."""
    from ops.cli import cli

    failing_stats.append(exc)
    result = CliRunner().invoke(cli, ["stats"], catch_exceptions=False)
    assert result.exit_code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(text), result.stderr
    assert "Traceback" not in result.output


def test_cli_masks_secrets_in_the_error_line(failing_stats: list[BaseException]) -> None:
    """A registered secret inside an unexpected error's message is masked on stderr."""
    from ops.cli import cli

    secret = "0x" + "ab" * 32
    register_secret(secret)
    failing_stats.append(RuntimeError(f"signing with {secret} failed"))
    result = CliRunner().invoke(cli, ["stats"], catch_exceptions=False)
    assert result.exit_code == 1 and secret not in result.output and "***" in result.stderr


# --- both daemons' main() ---------------------------------------------------------------------

def _daemon(script: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POLYMARKET_", "DATABASE_"))}
    base.update({"PMCT_ENV_FILE": str(tmp_path / "none.env"), "ENCRYPTION_KEY": "", **env})
    return subprocess.run([sys.executable, script, "--once", *args], cwd=ROOT, env=base,  # noqa: S603
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script", ["watcher.py", "executor.py"])
def test_daemon_unexpected_failure_is_exit_1_with_one_line(script: str, tmp_path: Path) -> None:
    """A database that cannot even be opened: exit 1, one `error:` line, no traceback."""
    done = _daemon(script, tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: unexpected failure: OperationalError")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", ["watcher.py", "executor.py"])
def test_daemon_bad_setting_is_exit_2_with_one_line(script: str, tmp_path: Path) -> None:
    """An input error (a setting) ends a daemon with exit 2 and one line naming the variable."""
    done = _daemon(script, tmp_path, CLAIM_LEASE_SECONDS="inf")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "CLAIM_LEASE_SECONDS" in lines[0]
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr


def test_watcher_bad_shard_is_exit_2(tmp_path: Path) -> None:
    """`--shard` is input: InputError, exit 2, one line."""
    done = _daemon("watcher.py", tmp_path, "--shard", "x/0")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: --shard must look like i/N (e.g. 0/4), got 'x/0'"]
