"""admin doctor on the local simulator: a healthy follower passes; bad credentials, zero balance or
allowance, clock skew, closed-only, an unmigrated database, a wrong key, a loose .env all FAIL."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import Result
from sqlalchemy import select

from crypto import KeyRing
from infra.config import Settings
from models import Follower
from ops.doctor import Doctor, Status
from sim import Simulator
from tests.ops.test_admin import add_alice, env, run  # noqa: F401 - env is a fixture
from tests.support.dbfixtures import Database
from tests.support.keys import TEST_ADDRESS
from tests.support.simfixtures import simulator, simulator_factory  # noqa: F401 - fixtures
from wire.types import ApiCreds

CLOSED_PORT = "http://127.0.0.1:9"
EXCHANGES = ("0xE111180000d2663C0091e4f400237545B87B996B", "0xe2222d279d744050d28e00520010520000310F59",
             "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa")  # docs/POLYMARKET.md §0


@pytest.fixture
def sim_env(env: Database, simulator: Simulator, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
            tmp_path: Path) -> Simulator:
    """The admin environment pointed at the simulator, live mode, no reachable Polygon RPC."""
    monkeypatch.setenv("POLYMARKET_CLOB_API_URL", simulator.clob_url)
    monkeypatch.setenv("POLYMARKET_DATA_API_URL", simulator.data_url)
    monkeypatch.setenv("POLYMARKET_GAMMA_API_URL", simulator.gamma_url)
    monkeypatch.setenv("POLYGON_RPC", CLOSED_PORT)
    monkeypatch.setenv("EXECUTION_MODE", "live")
    monkeypatch.setenv("PMCT_ENV_FILE", str(tmp_path / "absent.env"))
    assert add_alice().exit_code == 0
    return simulator


def checks(r: Result) -> dict[str, tuple[str, str]]:
    """name -> (status, detail + hint) from `doctor --json`."""
    return {c["name"]: (c["status"], c["detail"] + " " + c["hint"]) for c in json.loads(r.stdout)}


def doctor(*extra: str) -> Result:
    """Run doctor for Alice with JSON output."""
    return run("doctor", "--wallet", TEST_ADDRESS, "--json", *extra)


def test_healthy_follower_passes(sim_env: Simulator) -> None:
    """Funded, approved, authenticated follower: every check OK except the unreachable RPC (WARN)."""
    sim_env.fund(TEST_ADDRESS, pusd=100)
    assert run("auth-follower", "--wallet", TEST_ADDRESS).exit_code == 0
    r = doctor()
    assert r.exit_code == 0, r.output
    c = checks(r)
    for name in ("database", "schema", "encryption_key", "secrets", "env_file", "data_api",
                 "gamma_api", "clob_api", "clock_skew", "private_key", "clob_credentials",
                 "clob_auth", "closed_only", "balance", "allowance_standard",
                 "allowance_neg_risk", "allowance_v3", "wallet_type", "tier", "follower"):
        assert c[name][0] == "OK", (name, c[name])
    assert c["wallet_chain"][0] == "WARN" and "POLYGON_RPC" in c["wallet_chain"][1]
    assert c["balance"][1].startswith("pUSD balance 100")
    text = run("doctor", "--wallet", TEST_ADDRESS).stdout
    assert "OK   clob_auth: L2 credentials accepted" in text and "0 FAIL" in text


def test_bad_credentials_fail(sim_env: Simulator, fernet_key: str, env: Database) -> None:  # noqa: F811
    """Stored credentials the CLOB does not know → clob_auth FAIL, exit 1, secret not printed."""
    sim_env.fund(TEST_ADDRESS, pusd=100)
    bogus = ApiCreds(api_key="00000000-0000-0000-0000-000000000000",
                     secret="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", passphrase="nope-pass")
    with env.session() as s:
        f = s.scalar(select(Follower))
        assert f is not None
        f.encrypted_api_creds = KeyRing(fernet_key).encrypt_api_creds(bogus)
        f.api_key_id = bogus.api_key
        s.commit()
    r = doctor()
    assert r.exit_code == 1
    status, text = checks(r)["clob_auth"]
    assert status == "FAIL" and "auth-follower" in text
    assert bogus.secret not in r.output and bogus.passphrase not in r.output


def test_zero_balance_and_allowance_fail_live_warn_paper(sim_env: Simulator,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """No approvals: allowance FAIL in live mode; in paper mode the same problems only WARN."""
    sim_env.fund(TEST_ADDRESS, pusd=50, approve=False)
    for exchange in EXCHANGES:
        sim_env.set_allowance(TEST_ADDRESS, "COLLATERAL", exchange, 0)
    assert run("auth-follower", "--wallet", TEST_ADDRESS).exit_code == 0
    r = doctor()
    assert r.exit_code == 1
    c = checks(r)
    assert c["balance"][0] == "OK"
    assert {c[f"allowance_{n}"][0] for n in ("standard", "neg_risk", "v3")} == {"FAIL"}
    assert "approve pUSD" in c["allowance_v3"][1]
    sim_env.fund(TEST_ADDRESS, pusd=0, approve=False)
    assert checks(doctor())["balance"][0] == "FAIL"
    monkeypatch.setenv("EXECUTION_MODE", "paper")
    r = doctor()
    assert r.exit_code == 0, r.output
    assert checks(r)["allowance_standard"][0] == "WARN" and checks(r)["balance"][0] == "WARN"


def test_clock_skew_fails(sim_env: Simulator) -> None:
    """A CLOB clock two minutes ahead → clock_skew FAIL naming NTP."""
    sim_env.set_clock(offset=120)
    r = run("doctor", "--json")
    assert r.exit_code == 1
    status, text = checks(r)["clock_skew"]
    assert status == "FAIL" and "behind" in text and "NTP" in text


def test_closed_only_account_fails(sim_env: Simulator) -> None:
    """An account in closed-only mode → closed_only FAIL."""
    sim_env.fund(TEST_ADDRESS, pusd=10)
    assert run("auth-follower", "--wallet", TEST_ADDRESS).exit_code == 0
    sim_env.set_account_flags(TEST_ADDRESS, closed_only=True)
    r = doctor()
    assert r.exit_code == 1 and checks(r)["closed_only"][0] == "FAIL"
    assert checks(r)["clob_auth"][0] == "OK"


def test_missing_credentials_and_unreachable_endpoint(sim_env: Simulator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No auth-follower yet → clob_credentials FAIL (live); a dead Data API → data_api FAIL."""
    monkeypatch.setenv("POLYMARKET_DATA_API_URL", CLOSED_PORT)
    r = doctor()
    assert r.exit_code == 1
    c = checks(r)
    assert c["clob_credentials"][0] == "FAIL" and "auth-follower" in c["clob_credentials"][1]
    assert c["data_api"][0] == "FAIL" and c["gamma_api"][0] == "OK"


def test_wrong_encryption_key_and_loose_env_file(sim_env: Simulator, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets under another key → secrets and private_key FAIL; a 0640 .env → env_file FAIL."""
    from cryptography.fernet import Fernet

    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=INFO\n")
    env_file.chmod(0o640)
    monkeypatch.setenv("PMCT_ENV_FILE", str(env_file))
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    r = run("doctor", "--offline", "--json", "--wallet", TEST_ADDRESS)
    assert r.exit_code == 1
    c = checks(r)
    assert c["secrets"][0] == "FAIL" and c["private_key"][0] == "FAIL"
    assert c["env_file"][0] == "FAIL" and "chmod 600" in c["env_file"][1]
    assert "data_api" not in c  # --offline skips the network


def test_unmigrated_database_fails(sim_env: Simulator, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty database → schema FAIL telling to run init-db; follower checks are skipped."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    r = run("doctor", "--offline", "--json")
    assert r.exit_code == 1
    status, text = checks(r)["schema"]
    assert status == "FAIL" and "init-db" in text


def test_bad_setting_is_a_fail_line_not_a_crash(sim_env: Simulator,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid variable → one FAIL 'settings' line and exit 1."""
    monkeypatch.setenv("POLYMARKET_CHAIN_ID", "1")
    r = run("doctor", "--offline")
    assert r.exit_code == 1 and r.stdout.startswith("FAIL settings: POLYMARKET_CHAIN_ID")


@pytest.mark.parametrize(("sig", "funder", "code", "expected"), [
    (0, "0x" + "1" * 40, "0x", Status.OK),
    (0, "0x" + "1" * 40, "0x6080", Status.FAIL),
    (0, "0x" + "1" * 40, "0xef0100" + "2" * 40, Status.OK),  # EIP-7702 delegated EOA
    (2, "0x" + "2" * 40, "0x6080", Status.OK),
    (1, "0x" + "2" * 40, "0x", Status.FAIL),
    (3, "0x" + "2" * 40, "0x", Status.WARN),
])
def test_wallet_type_against_chain_code(sig: int, funder: str, code: str, expected: Status) -> None:
    """eoa must have no code; proxy/safe must be contracts; an undeployed deposit wallet WARNs."""
    doc = Doctor(settings=Settings(), get_code=lambda _addr: code)
    f = SimpleNamespace(signature_type=sig, funder_address=funder, signer_address="0x" + "1" * 40)
    assert doc._wallet_on_chain(f).status is expected
    structure = doc._wallet_structure(f).status
    assert structure is (Status.OK if (sig == 0) == (funder == f.signer_address) else Status.FAIL)


def test_rpc_checks_against_the_simulated_node(sim_env: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chain id, head age, eth_getLogs on the exchanges, the range cap the node enforces, the websocket."""
    monkeypatch.setenv("POLYGON_RPC", sim_env.rpc_url)
    monkeypatch.setenv("POLYGON_WS", sim_env.ws_url)
    sim_env.configure(rpc_max_block_range=100)
    c = checks(run("doctor", "--json"))
    assert c["rpc"][0] == "OK" and "chain 137" in c["rpc"][1]
    assert c["rpc_head"][0] == "OK"
    assert c["rpc_logs"][0] == "OK" and "OrderFilled" in c["rpc_logs"][1]
    assert c["rpc_range"][0] == "WARN" and "CHAIN_MAX_BLOCK_RANGE=100" in c["rpc_range"][1]
    assert c["rpc_ws"][0] == "OK"


def test_rpc_on_another_chain_fails(sim_env: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node of another network is a FAIL whatever the fill sources."""
    monkeypatch.setenv("POLYGON_RPC", sim_env.rpc_url)
    sim_env.configure(chain_id=80002)
    r = run("doctor", "--json")
    assert r.exit_code == 1
    assert checks(r)["rpc"][0] == "FAIL"


def test_an_unreachable_rpc_fails_only_when_the_chain_is_the_only_source(
        sim_env: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the Data API as fallback an unreachable RPC is a WARN; with FILL_SOURCES=chain a FAIL."""
    assert checks(run("doctor", "--json"))["rpc"][0] == "WARN"
    monkeypatch.setenv("FILL_SOURCES", "chain")
    r = run("doctor", "--json")
    assert checks(r)["rpc"][0] == "FAIL" and r.exit_code == 1
