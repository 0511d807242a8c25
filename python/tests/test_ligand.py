"""LigandModel: LigandMPNN-family checkpoints from Python give the numbers of `mpnn design`,
`mpnn score` and `mpnn probs` (and of the official fixtures), with warnings and notes."""

import numpy as np
import pytest

import mpnn_rs
from helpers import npz, read_fasta, run_cli


@pytest.fixture(scope="module")
def lig(parity):
    return parity / "ligand"


@pytest.fixture(scope="module")
def ligand_model(lig):
    return mpnn_rs.LigandModel.load(lig / "weights" / "ligand_k32_a25.pt")


def test_load_detects_the_type(ligand_model, lig):
    assert ligand_model.model_type == "ligand_mpnn"
    assert ligand_model.k == 32 and ligand_model.name == "ligand_k32_a25"
    p = mpnn_rs.LigandModel.load(lig / "weights" / "protein_k48.pt", model_type="protein_mpnn")
    assert p.model_type == "protein_mpnn"
    with pytest.raises(mpnn_rs.MpnnError, match="global_label_membrane_mpnn"):
        mpnn_rs.LigandModel.load(lig / "weights" / "membrane_global_k48.pt")
    with pytest.raises(mpnn_rs.MpnnError, match="unknown model type"):
        mpnn_rs.LigandModel.load(lig / "weights" / "protein_k48.pt", model_type="ligand")


def test_design_equals_the_command_line(ligand_model, lig, mpnn_bin, tmp_path):
    files = [lig / "structures" / "1BC8.pdb", lig / "structures" / "2GFB.pdb"]
    out = ligand_model.design(files, num_seqs=2, temperature=[0.1, 0.3], seed=5)
    assert [d["name"] for d in out] == ["1BC8", "2GFB"]
    run_cli(mpnn_bin, "design", *files, "--weights", lig / "weights" / "ligand_k32_a25.pt", "--out", tmp_path,
            "--seed", 5, "--num_seq_per_target", 2, "--sampling_temp", "0.1 0.3")
    for d in out:
        recs = read_fasta(tmp_path / "seqs" / f"{d['name']}.fa")
        assert recs[0][1] == d["native"]
        assert [r[1] for r in recs[1:]] == [x["sequence"] for x in d["designs"]]
        assert d["designs"][0]["log_probs"].shape == (len(d["residue_ids"]), 21)
    # 2GFB has no context atoms: said, and no ligand_confidence claimed.
    assert any("no context atoms" in n for n in out[1]["notes"])
    assert all(x["ligand_confidence"] is None for x in out[1]["designs"])
    assert all(x["ligand_confidence"] is not None for x in out[0]["designs"])


def test_insertion_codes_and_unknown_ids(ligand_model, lig):
    d = ligand_model.design(lig / "structures" / "2GFB.pdb", chains="B", redesign="B52A B82-B82C", seed=1)
    ids = [i for i, m in zip(d["residue_ids"], d["designed"]) if m]
    assert ids == ["B52A", "B82", "B82A", "B82B", "B82C"]
    with pytest.raises(mpnn_rs.MpnnError, match="B52Z is not in"):
        ligand_model.design(lig / "structures" / "2GFB.pdb", fixed="B52Z")


def test_probs_and_score_equal_the_command_line_and_fixtures(ligand_model, lig, mpnn_bin, tmp_path):
    f = lig / "structures" / "1BC8.pdb"
    p = ligand_model.probs(f, kind="unconditional")
    want = npz(lig / "ligand_1BC8.npz")["single_aa_seq_log_probs"][0]
    assert np.abs(p["log_probs"][0] - want).max() < 1e-4
    w = lig / "weights" / "ligand_k32_a25.pt"
    run_cli(mpnn_bin, "probs", "--conditional", "--backbone-only", f, "--weights", w, "--out", tmp_path, "--seed", 4)
    bb = ligand_model.probs(f, kind="backbone_only", seed=4)
    np.testing.assert_array_equal(bb["log_probs"], npz(tmp_path / "conditional_probs_only" / "1BC8.npz")["log_p"])
    run_cli(mpnn_bin, "score", f, "--weights", w, "--out", tmp_path, "--seed", 4, "--num_seq_per_target", 2)
    s = ligand_model.score(f, passes=2, seed=4)
    cli = npz(tmp_path / "score_only" / "1BC8_pdb.npz")
    np.testing.assert_array_equal(s["scores"], cli["score"])
    np.testing.assert_array_equal(s["log_probs"], cli["log_probs"])


def test_warning_when_the_model_ignores_context(lig):
    m = mpnn_rs.LigandModel.load(lig / "weights" / "protein_k48.pt", model_type="protein_mpnn")
    d = m.score(lig / "structures" / "1BC8.pdb")
    assert any("ignores them" in w for w in d["warnings"])
    m = mpnn_rs.LigandModel.load(lig / "weights" / "ligand_k32_a25.pt")
    assert m.score(lig / "structures" / "1BC8.pdb")["warnings"] == []
    assert any("ignores them" in w for w in m.score(lig / "structures" / "1BC8.pdb", use_atom_context=False)["warnings"])
