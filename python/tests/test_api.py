"""mpnn_rs's own behaviour: structures from arrays, errors, lists, the GIL."""

import threading
import time

import numpy as np
import pytest

import mpnn_rs


def test_structure_from_file(s5l33):
    assert s5l33.name == "5L33"
    assert len(s5l33) == 106
    assert s5l33.chains == ["A"]
    assert s5l33.residue_chains == ["A"] * 106
    assert s5l33.sequence.startswith("HMPEEEKAARLFIEAL")
    x = s5l33.coordinates
    assert x.shape == (106, 4, 3) and x.dtype == np.float64
    assert "5L33" in repr(s5l33)


def test_arrays_give_the_same_results_as_the_file(model, s5l33):
    x = s5l33.coordinates
    a = mpnn_rs.Structure.from_arrays(x, chains="A", sequence=s5l33.sequence, name="5L33")
    assert a.sequence == s5l33.sequence and a.chains == ["A"]
    np.testing.assert_array_equal(a.coordinates, x)
    d1 = model.design(s5l33, num_seqs=4, temperature=0.2, seed=1)
    d2 = model.design(a, num_seqs=4, temperature=0.2, seed=1)
    assert d1.sequences == d2.sequences
    np.testing.assert_array_equal(d1.log_probs, d2.log_probs)
    np.testing.assert_array_equal(model.score(s5l33).scores, model.score(a).scores)
    np.testing.assert_array_equal(model.unconditional_probs(s5l33), model.unconditional_probs(a))
    # Lists, tuples, float32 and per-residue chain ids are accepted too.
    b = mpnn_rs.Structure.from_arrays(x.astype(np.float32).tolist(), chains=["A"] * 106, name="5L33")
    assert b.sequence == "X" * 106


def test_multichain_arrays_match_the_file(parity, model):
    s = mpnn_rs.Structure.from_file(parity / "structures" / "3HTN.pdb")
    a = mpnn_rs.Structure.from_arrays(
        s.coordinates, chains=s.residue_chains, sequence=s.sequence, name=s.name, allow_missing=True
    )
    assert a.chains == s.chains
    d1 = model.design(s, num_seqs=2, chains=["B"], seed=2)
    d2 = model.design(a, num_seqs=2, chains=["B"], seed=2)
    assert d1.sequences == d2.sequences
    np.testing.assert_array_equal(d1.scores, d2.scores)


def test_residue_numbers_gaps_and_ca_only(ca_model, s5l33):
    ca = s5l33.coordinates[:, 1, :]
    numbers = np.arange(1, 107)
    numbers[50:] += 3  # a gap of three residues
    s = mpnn_rs.Structure.from_arrays(ca, residue_numbers=numbers, sequence=s5l33.sequence)
    assert len(s) == 109
    assert s.sequence[50:53] == "XXX"
    assert np.isnan(s.coordinates[50:53]).all()
    assert np.isnan(s.coordinates[:, 0]).all()  # no N in a CA-only array
    p = ca_model.unconditional_probs(s)
    assert p.shape == (109, 21)


@pytest.mark.parametrize(
    "coords, kwargs, needle",
    [
        (np.zeros((5, 5, 3)), {}, "[L, 4, 3]"),
        (np.zeros((5, 4)), {}, "[L, 4, 3]"),
        (np.zeros((0, 4, 3)), {}, "no residues"),
        (np.zeros((2, 4, 3)), {"chains": ["A", "B", "C"]}, "3 chain ids for 2 residues"),
        (np.zeros((2, 4, 3)), {"chains": ["A", ""]}, "is empty"),
        (np.zeros((3, 4, 3)), {"chains": ["A", "B", "A"]}, "together"),
        (np.zeros((2, 4, 3)), {"sequence": "A"}, "1 letters for 2 residues"),
        (np.zeros((2, 4, 3)), {"sequence": "AB"}, "'B' at residue 2"),
        (np.zeros((2, 4, 3)), {"residue_numbers": [2, 1]}, "must not decrease"),
        (np.zeros((2, 4, 3)), {"residue_numbers": [1.5, 2]}, "must be integers"),
        (np.zeros((2, 4, 3)), {"residue_numbers": [1, 2, 3]}, "3 residue numbers for 2"),
        (np.full((2, 4, 3), np.inf), {}, "must be finite"),
    ],
)
def test_bad_arrays(coords, kwargs, needle):
    with pytest.raises(mpnn_rs.MpnnError) as e:
        mpnn_rs.Structure.from_arrays(coords, name="bad", **kwargs)
    assert needle in str(e.value)
    assert str(e.value).startswith("bad: ")
    assert isinstance(e.value, ValueError)


def test_nan_needs_allow_missing(s5l33):
    x = s5l33.coordinates.copy()
    x[10, 3] = np.nan
    with pytest.raises(mpnn_rs.MpnnError, match=r"residue 11 \(chain A\): O coordinate is NaN.*allow_missing"):
        mpnn_rs.Structure.from_arrays(x)
    s = mpnn_rs.Structure.from_arrays(x, allow_missing=True)
    assert np.isnan(s.coordinates[10, 3]).all()
    with pytest.raises(mpnn_rs.MpnnError, match="no usable residue"):
        mpnn_rs.Structure.from_arrays(np.full((3, 4, 3), np.nan), allow_missing=True)
    with pytest.raises(ValueError):
        mpnn_rs.Structure.from_arrays([["not", "numbers", "here"]])


def test_bad_options(model, s5l33, parity):
    cases = [
        (dict(temperature=0.0), "temperature="),
        (dict(temperature=[0.1, -1]), "temperature="),
        (dict(num_seqs=0), "num_seqs="),
        (dict(chains=["Z"]), "chain `Z` is not in the structure"),
        (dict(fixed="A500"), "fixed="),
        (dict(fixed="A1-106"), "nothing is designable"),
        (dict(fixed="A1-5", redesign="A3"), "fixed= and redesign="),
        (dict(tied="A1,A2-3"), "tied="),
        (dict(bias={"B": 1.0}), "bias="),
        (dict(omit="ACDEFGHIKLMNPQRSTVWY"), "every amino acid is omitted"),
        (dict(omit_by_residue={"A1": "ACDEFGHIKLMNPQRSTVWY"}), "omit="),
        (dict(bias_by_residue={"A1": {"Q": float("nan")}}), "not a finite number"),
        (dict(bias={"W": float("inf")}), "not a finite number"),
        (dict(backbone_noise=-1.0), "backbone_noise="),
        (dict(homo_oligomer=True, chains=["A"]), ""),
    ]
    for kwargs, needle in cases:
        try:
            model.design(s5l33, **kwargs)
        except mpnn_rs.MpnnError as e:
            assert needle in str(e), (kwargs, str(e))
        else:
            # A lone chain is its own homo-oligomer: valid. Every other case must fail.
            assert needle == "", kwargs
    by_name = mpnn_rs.Model.load("full_k48", weights_dir=parity / "weights")
    assert by_name.name == "full_k48" and by_name.path == str(parity / "weights" / "full_k48.pt")
    with pytest.raises(mpnn_rs.MpnnError, match="device="):
        mpnn_rs.Model.load(parity / "weights" / "full_k48.pt", device="cuda")
    with pytest.raises(mpnn_rs.MpnnError, match="precision="):
        mpnn_rs.Model.load(parity / "weights" / "full_k48.pt", precision="f64")
    with pytest.raises(mpnn_rs.MpnnError, match="CA-only"):
        mpnn_rs.Model.load(parity / "weights" / "ca_k48.pt", ca_only=False)
    with pytest.raises(mpnn_rs.MpnnError):
        mpnn_rs.Model.load(parity / "weights" / "missing.pt")
    # Weight lookup errors say how to give weights in Python, not with command-line flags.
    with pytest.raises(mpnn_rs.MpnnError, match=r"unknown model name `v_99_999`.*weights_dir=DIR") as e:
        mpnn_rs.Model.load("v_99_999", offline=True)
    assert "--weights" not in str(e.value)
    with pytest.raises(mpnn_rs.MpnnError, match="passes"):
        model.score(s5l33, passes=0)
    with pytest.raises(mpnn_rs.MpnnError, match="sequence 1"):
        model.score(s5l33, ["MKV"])
    with pytest.raises(TypeError):
        model.design("5L33.pdb")
    with pytest.raises(mpnn_rs.MpnnError, match="empty"):
        model.design([])


def test_model_properties(model, ca_model, parity):
    assert model.name == "full_k48" and not model.ca_only and model.k == 48
    assert ca_model.ca_only
    assert model.warnings == []
    m16 = mpnn_rs.Model.load(str(parity / "weights" / "full_k48.pt"), k=16, precision="bf16")
    assert m16.k == 16 and len(m16.warnings) == 2
    assert "full_k48" in repr(model)


def test_lists_give_lists(model, s5l33, parity):
    other = mpnn_rs.Structure.from_file(parity / "structures" / "6MRR.pdb")
    ds = model.design([s5l33, other], num_seqs=2, seed=8)
    assert isinstance(ds, list) and [d.name for d in ds] == ["5L33", "6MRR"]
    for s, d in zip([s5l33, other], ds):
        one = model.design(s, num_seqs=2, seed=8)
        assert one.sequences == d.sequences
        np.testing.assert_array_equal(one.log_probs, d.log_probs)
    assert len(model.score((s5l33, other))) == 2
    u = model.unconditional_probs([s5l33, other])
    assert [a.shape[0] for a in u] == [106, len(other)]
    c = model.conditional_probs([s5l33], passes=1)
    assert isinstance(c, list) and c[0].shape == (1, 106, 21)


def test_gil_is_released(model, s5l33):
    count = 0
    running = True

    def counter():
        nonlocal count
        while running:
            count += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        # The counting rate of the thread on its own.
        c0, t0 = count, time.perf_counter()
        time.sleep(0.2)
        rate = (count - c0) / (time.perf_counter() - t0)
        before, start = count, time.perf_counter()
        model.design(s5l33, num_seqs=32, seed=1)
        elapsed = time.perf_counter() - start
        during = count - before
    finally:
        running = False
        t.join()
    # With the GIL held for the whole call the thread would count for a switch interval or two
    # (a few ms) at most; released, it keeps counting while the engine's threads share the CPU.
    assert elapsed > 0.1, elapsed
    assert during > 0.1 * rate * elapsed, (during, rate, elapsed)
