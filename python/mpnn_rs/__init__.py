"""mpnn_rs: ProteinMPNN (the official model's numbers) from Python, on the Rust engine of `mpnn`.

    import mpnn_rs as mpnn
    model = mpnn.Model.load("v_48_020")            # or a path to a .pt / .safetensors file
    s = mpnn.Structure.from_file("5L33.pdb")       # or Structure.from_arrays(X, chains=...)
    d = model.design(s, num_seqs=8, temperature=0.1, seed=37)
    d.sequences, d.scores, d.log_probs

LigandMPNN-family checkpoints: `mpnn.LigandModel.load("ligandmpnn_v_32_010_25.pt")`, then
`design` / `score` / `probs` on structure files (read with LigandMPNN's parser, context atoms
kept; residue ids such as "B52A"), each result a dict (see `LigandModel`).

Every job takes one Structure or a list of them (a list gives a list of results) and releases
the GIL while it runs. Errors of the library are raised as `MpnnError` (a `ValueError`).
"""

from ._mpnn_rs import Designs, LigandModel, Model, MpnnError, Scores, Structure, __version__

__all__ = ["Designs", "LigandModel", "Model", "MpnnError", "Scores", "Structure", "__version__"]
