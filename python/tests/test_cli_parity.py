"""mpnn_rs against the `mpnn` command line: the same seed and options give the same sequences,
the same scores and the same probabilities, bit for bit."""

import json

import numpy as np
import pytest

import mpnn_rs
from helpers import header_fields, npz, read_fasta, run_cli


def design_cli(mpnn_bin, tmp_path, structure, weights, *extra):
    out = tmp_path / "cli"
    run_cli(mpnn_bin, "design", structure, "--weights", weights, "--out", out, "--save_probs", "1", "--save_score", "1", *extra)
    name = structure.stem
    fasta = read_fasta(out / "seqs" / f"{name}.fa")
    return fasta, npz(out / "scores" / f"{name}.npz"), npz(out / "probs" / f"{name}.npz")


def assert_same_design(d, fasta, scores, probs, temperatures):
    native, designs = fasta[0], fasta[1:]
    assert len(d) == len(designs)
    assert d.sequences == [seq for _, seq in designs]
    assert d.native_sequence == native[1]
    fields = header_fields(native[0])
    assert f"{d.native_score:.4f}" == fields["score"]
    assert f"{d.native_global_score:.4f}" == fields["global_score"]
    for i, (header, _) in enumerate(designs):
        h = header_fields(header)
        assert f"{d.scores[i]:.4f}" == h["score"]
        assert f"{d.global_scores[i]:.4f}" == h["global_score"]
        assert f"{d.recovery[i]:.4f}" == h["seq_recovery"]
        assert float(h["T"]) == d.temperatures[i]
    assert sorted(set(d.temperatures.tolist())) == sorted(temperatures)
    np.testing.assert_array_equal(d.scores, scores["score"])
    np.testing.assert_array_equal(d.global_scores, scores["global_score"])
    np.testing.assert_array_equal(d.log_probs, probs["log_probs"])
    np.testing.assert_array_equal(d.probs, probs["probs"])
    np.testing.assert_array_equal(d.decoding_orders, probs["decoding_order"])
    assert d.chain_order == probs["chain_order"][0].tolist()


def test_design_5l33_matches_cli(mpnn_bin, parity, full_weights, model, s5l33, tmp_path):
    pdb = parity / "structures" / "5L33.pdb"
    fasta, scores, probs = design_cli(
        mpnn_bin, tmp_path, pdb, full_weights, "--num_seq_per_target", "8", "--sampling_temp", "0.1", "--seed", "37"
    )
    d = model.design(s5l33, num_seqs=8, temperature=0.1, seed=37)
    assert isinstance(d, mpnn_rs.Designs)
    assert d.log_probs.shape == (8, 106, 21) and d.decoding_orders.shape == (8, 106)
    assert_same_design(d, fasta, scores, probs, [0.1])


def test_design_constraints_and_two_temperatures_match_cli(mpnn_bin, parity, full_weights, model, tmp_path):
    pdb = parity / "structures" / "3HTN.pdb"
    s = mpnn_rs.Structure.from_file(pdb)
    bias_res = tmp_path / "bias_by_residue.json"
    bias_res.write_text(json.dumps({"A5": {"W": 3.0}, "B2-4": {"P": 1.5}}))
    omit_res = tmp_path / "omit_by_residue.json"
    omit_res.write_text(json.dumps({"A20-30": "G"}))
    fasta, scores, probs = design_cli(
        mpnn_bin, tmp_path, pdb, full_weights,
        "--num_seq_per_target", "3", "--sampling_temp", "0.1 0.3", "--seed", "11",
        "--chains", "A,B", "--fixed", "A1-10 B40", "--tied", "A12,B12|A13-15,B13-15",
        "--bias", "W:2.0,A:-1", "--omit", "C", "--bias-by-residue", bias_res, "--omit-by-residue", omit_res,
    )
    d = model.design(
        s, num_seqs=3, temperature=[0.1, 0.3], seed=11, chains=["A", "B"], fixed="A1-10 B40",
        tied=["A12,B12", "A13-15,B13-15"], bias={"W": 2.0, "A": -1.0}, omit="C",
        bias_by_residue={"A5": {"W": 3.0}, "B2-4": {"P": 1.5}}, omit_by_residue={"A20-30": "G"},
    )
    assert_same_design(d, fasta, scores, probs, [0.1, 0.3])
    # The constraints did something: fixed positions keep the native letters.
    native_a = d.native_sequence.split("/")[0]
    for seq in d.sequences:
        assert seq.split("/")[0][:10] == native_a[:10]
        assert "C" not in seq


def test_design_homo_oligomer_matches_cli(mpnn_bin, parity, full_weights, model, tmp_path):
    pdb = parity / "structures" / "4GYT.pdb"
    s = mpnn_rs.Structure.from_file(pdb)
    fasta, scores, probs = design_cli(
        mpnn_bin, tmp_path, pdb, full_weights, "--num_seq_per_target", "2", "--seed", "5", "--homo-oligomer"
    )
    d = model.design(s, num_seqs=2, seed=5, homo_oligomer=True)
    assert_same_design(d, fasta, scores, probs, [0.1])
    for seq in d.sequences:
        assert len(set(seq.split("/"))) == 1


def test_ca_only_design_matches_cli(mpnn_bin, parity, ca_model, tmp_path):
    pdb = parity / "structures" / "5L33.pdb"
    fasta, scores, probs = design_cli(
        mpnn_bin, tmp_path, pdb, parity / "weights" / "ca_k48.pt", "--ca_only", "--num_seq_per_target", "2", "--seed", "3"
    )
    d = ca_model.design(mpnn_rs.Structure.from_file(pdb), num_seqs=2, seed=3)
    assert_same_design(d, fasta, scores, probs, [0.1])


def test_score_matches_cli(mpnn_bin, parity, full_weights, model, tmp_path):
    pdb = parity / "structures" / "3HTN.pdb"
    s = mpnn_rs.Structure.from_file(pdb)
    fasta_in = tmp_path / "in.fa"
    native = model.score(s, chains=["A"]).sequences[0]
    other = "G" * len(native)
    fasta_in.write_text(f">x\n{other}\n")
    out = tmp_path / "score"
    run_cli(mpnn_bin, "score", pdb, "--weights", full_weights, "--out", out, "--num_seq_per_target", "3",
            "--seed", "9", "--chains", "A", "--fasta", fasta_in)
    r = model.score(s, [native, other], passes=3, seed=9, chains="A")
    assert r.scores.shape == (2, 3) and r.log_probs.shape == (2, 3, len(s), 21)
    pdb_npz = npz(out / "score_only" / "3HTN_pdb.npz")
    fasta_npz = npz(out / "score_only" / "3HTN_fasta_1.npz")
    np.testing.assert_array_equal(r.scores[0], pdb_npz["score"])
    np.testing.assert_array_equal(r.global_scores[0], pdb_npz["global_score"])
    np.testing.assert_array_equal(r.scores[1], fasta_npz["score"])
    np.testing.assert_array_equal(r.global_scores[1], fasta_npz["global_score"])
    # Scoring the native sequence by default is the same as naming it.
    default = model.score(s, passes=3, seed=9, chains="A")
    np.testing.assert_array_equal(default.scores[0], r.scores[0])
    np.testing.assert_array_equal(default.log_probs[0], r.log_probs[0])


def test_probs_match_cli(mpnn_bin, parity, full_weights, model, s5l33, tmp_path):
    pdb = parity / "structures" / "5L33.pdb"
    out = tmp_path / "probs"
    run_cli(mpnn_bin, "probs", "--unconditional", pdb, "--weights", full_weights, "--out", out)
    u = model.unconditional_probs(s5l33)
    assert u.shape == (106, 21) and u.dtype == np.float32
    np.testing.assert_array_equal(u, npz(out / "unconditional_probs_only" / "5L33.npz")["log_p"][0])
    for backbone_only in (False, True):
        out = tmp_path / f"cond{backbone_only}"
        extra = ["--backbone-only"] if backbone_only else []
        run_cli(mpnn_bin, "probs", "--conditional", pdb, "--weights", full_weights, "--out", out,
                "--num_seq_per_target", "2", "--seed", "4", *extra)
        c = model.conditional_probs(s5l33, passes=2, seed=4, backbone_only=backbone_only)
        assert c.shape == (2, 106, 21)
        np.testing.assert_array_equal(c, npz(out / "conditional_probs_only" / "5L33.npz")["log_p"])
