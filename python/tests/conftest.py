"""Fixtures of the mpnn_rs test suite (run against an installed wheel).

The parity fixtures come from $MPNN_PARITY (else $MPNN_PARITY_DIR, else ../shared/parity beside
the repository); the command line to compare with from $MPNN_BIN (else target/release/mpnn).
When either is missing the tests that need it are skipped, except under CI=true, where that is
a failure.
"""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CI = os.environ.get("CI") == "true"


def _missing(what):
    if CI:
        pytest.fail(f"{what} (required under CI=true)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def parity():
    env = os.environ.get("MPNN_PARITY") or os.environ.get("MPNN_PARITY_DIR")
    d = pathlib.Path(env) if env else REPO.parent / "shared" / "parity"
    if not (d / "README.md").exists():
        _missing(f"parity fixtures not found at {d}")
    return d


@pytest.fixture(scope="session")
def mpnn_bin():
    b = pathlib.Path(os.environ.get("MPNN_BIN") or REPO / "target" / "release" / "mpnn")
    if not b.exists():
        _missing(f"the mpnn binary is not built at {b} (cargo build --release)")
    return b


@pytest.fixture(scope="session")
def full_weights(parity):
    return parity / "weights" / "full_k48.pt"


@pytest.fixture(scope="session")
def model(full_weights):
    import mpnn_rs

    return mpnn_rs.Model.load(full_weights)


@pytest.fixture(scope="session")
def ca_model(parity):
    import mpnn_rs

    return mpnn_rs.Model.load(parity / "weights" / "ca_k48.pt")


@pytest.fixture(scope="session")
def s5l33(parity):
    import mpnn_rs

    return mpnn_rs.Structure.from_file(parity / "structures" / "5L33.pdb")
