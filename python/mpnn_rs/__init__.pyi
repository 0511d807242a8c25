"""Type stubs of mpnn_rs: ProteinMPNN (the official model's numbers) on the Rust engine of `mpnn`.

Conventions:
- L is the number of residues of a structure as parsed (numbering gaps included, as the
  official parser lays chains out); arrays over residues follow the model's chain order
  (designed chains first, each group sorted), given by `chain_order` on the results.
- Columns of [.., 21] arrays follow the model's alphabet "ACDEFGHIKLMNPQRSTVWYX".
- Residue specs address 1-based positions within a chain as parsed: "A1-10 A15 B" (a whole
  chain B), the official dictionaries' convention, not PDB residue numbers.
- Every job takes one Structure or a list of them; a list returns a list of results, in order.
  The GIL is released while a job runs.
"""

from os import PathLike
from typing import Mapping, Optional, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

class MpnnError(ValueError):
    """An error of the mpnn library: a bad structure, option or checkpoint. The message names
    the item (structure, option, chain, position) and how to fix it."""

class Structure:
    """A protein backbone: chains of residues with N, CA, C, O coordinates and a sequence."""

    @staticmethod
    def from_file(path: Union[str, PathLike[str]]) -> Structure:
        """Reads a PDB or mmCIF file (gzip-compressed too), or a jsonl holding one parsed
        structure, exactly as the official parser reads it. The name is the file's stem."""
    @staticmethod
    def from_arrays(
        coordinates: npt.ArrayLike,
        chains: Union[str, Sequence[str], None] = None,
        residue_numbers: Optional[npt.ArrayLike] = None,
        sequence: Optional[str] = None,
        name: str = "arrays",
        allow_missing: bool = False,
    ) -> Structure:
        """Builds a structure from arrays, as the file readers would read the same atoms.

        coordinates: [L, 4, 3] (N, CA, C, O per residue) or [L, 3] (CA only, for CA-only
            models), in Å.
        chains: one chain id per residue, or one id for all residues (default "A"). A chain's
            residues must be together; chains are ordered like the readers order them.
        residue_numbers: integers, non-decreasing within a chain (default 1, 2, ... per chain).
            Gaps in the numbering become missing residues, as in a file; an equal number twice
            is two residues (like insertion codes).
        sequence: one letter per residue (X or - for unknown; default all unknown).
        allow_missing: read NaN coordinates as missing atoms (otherwise NaN is an error).

        Raises MpnnError on a wrong shape, NaN (without allow_missing) or infinite values, no
        residues, arrays of different lengths, bad chain ids or letters.
        """
    @property
    def name(self) -> str:
        """The name outputs are named after (the file stem for files)."""
    @property
    def sequence(self) -> str:
        """One-letter sequence of every residue, chains in `chains` order (X for unknown)."""
    @property
    def chains(self) -> list[str]:
        """Chain ids in stored order."""
    @property
    def residue_chains(self) -> list[str]:
        """The chain id of every residue."""
    @property
    def coordinates(self) -> npt.NDArray[np.float64]:
        """[L, 4, 3] N, CA, C, O coordinates (NaN for missing atoms and numbering gaps)."""
    def __len__(self) -> int:
        """Number of residues L."""

class Scores:
    """Scores of sequences on one structure: n sequences, `passes` decoding orders each."""

    name: str
    sequences: list[str]
    """The scored sequences (designed chains, joined by '/')."""
    scores: npt.NDArray[np.float32]
    """[n, passes] official `score`: mean negative log-likelihood over designed positions."""
    global_scores: npt.NDArray[np.float32]
    """[n, passes] official `global_score`: over all residues."""
    log_probs: npt.NDArray[np.float32]
    """[n, passes, L, 21] log-probabilities of each pass."""
    chain_order: list[str]
    def __len__(self) -> int: ...

class Designs:
    """Designed sequences for one structure, n = len(temperatures) × num_seqs, in the order of
    the official FASTA file (all sequences of the first temperature first)."""

    name: str
    sequences: list[str]
    """The designed chains' sequences, joined by '/', as in the FASTA file."""
    full_sequences: list[str]
    """Every residue's letter, [n] strings of length L (model chain order)."""
    scores: npt.NDArray[np.float32]
    """[n] official `score` (designed positions)."""
    global_scores: npt.NDArray[np.float32]
    """[n] official `global_score` (all positions)."""
    recovery: npt.NDArray[np.float32]
    """[n] fraction of designed positions that kept the native amino acid."""
    log_probs: npt.NDArray[np.float32]
    """[n, L, 21] log-probabilities of each design on its own decoding order."""
    probs: npt.NDArray[np.float32]
    """[n, L, 21] the probabilities each letter was drawn from (0 where not designed)."""
    decoding_orders: npt.NDArray[np.int64]
    """[n, L] decoding order of each design."""
    temperatures: npt.NDArray[np.float64]
    """[n] the temperature of each design."""
    native_score: float
    native_global_score: float
    native_sequence: str
    """The native sequence of the designed chains, joined by '/'."""
    chain_order: list[str]
    def __len__(self) -> int: ...

class Model:
    """A ProteinMPNN checkpoint loaded once, for any number of jobs."""

    @staticmethod
    def load(
        weights: Union[str, PathLike[str]] = "v_48_020",
        *,
        ca_only: Optional[bool] = None,
        soluble: bool = False,
        weights_dir: Union[str, PathLike[str], None] = None,
        offline: bool = False,
        k: Optional[int] = None,
        precision: str = "f32",
        device: str = "auto",
    ) -> Model:
        """Loads a checkpoint.

        weights: an official model name (v_48_002, v_48_010, v_48_020, v_48_030), found in
            weights_dir, $MPNN_WEIGHTS, the cache, else downloaded (unless offline or
            MPNN_OFFLINE=1) exactly as the `mpnn` command does; or a path to a .pt or
            .safetensors file (any architecture).
        ca_only: for names, pick the CA-only model; for files, require (True) or refuse (False)
            a CA-only checkpoint (None: whatever the file is).
        soluble: for names, the soluble-protein models.
        k: neighbours per residue (fewer than trained is an approximation; see `warnings`).
        precision: "f32" (exact), "bf16", "f16" or "int8" (approximations).
        device: "auto" or "cpu" (this build runs on the CPU).
        """
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def ca_only(self) -> bool: ...
    @property
    def k(self) -> int: ...
    @property
    def noise_level(self) -> float: ...
    @property
    def warnings(self) -> list[str]:
        """The approximations of the float32 model this configuration makes (empty: exact)."""
    @overload
    def score(
        self,
        structures: Structure,
        sequences: Union[str, Sequence[str], None] = None,
        *,
        passes: int = 1,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
    ) -> Scores: ...
    @overload
    def score(
        self,
        structures: Sequence[Structure],
        sequences: Union[str, Sequence[str], None] = None,
        *,
        passes: int = 1,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
    ) -> list[Scores]:
        """Official scores (`mpnn score`) of `sequences` (default: the native sequence), each
        the designed chains' residues ('/' between chains ignored) or every residue, over
        `passes` random decoding orders from `seed`. `chains`: the designed chains (default
        all); the others are context."""
    @overload
    def unconditional_probs(
        self, structures: Structure, *, chains: Union[str, Sequence[str], None] = None
    ) -> npt.NDArray[np.float32]: ...
    @overload
    def unconditional_probs(
        self, structures: Sequence[Structure], *, chains: Union[str, Sequence[str], None] = None
    ) -> list[npt.NDArray[np.float32]]:
        """Official `unconditional_probs()` (`mpnn probs --unconditional`): log-probabilities
        [L, 21] of each position given the backbone alone."""
    @overload
    def conditional_probs(
        self,
        structures: Structure,
        *,
        passes: int = 1,
        seed: int = 37,
        backbone_only: bool = False,
        chains: Union[str, Sequence[str], None] = None,
    ) -> npt.NDArray[np.float32]: ...
    @overload
    def conditional_probs(
        self,
        structures: Sequence[Structure],
        *,
        passes: int = 1,
        seed: int = 37,
        backbone_only: bool = False,
        chains: Union[str, Sequence[str], None] = None,
    ) -> list[npt.NDArray[np.float32]]:
        """Official `conditional_probs()` (`mpnn probs --conditional`): log-probabilities
        [passes, L, 21] of each designed position given the rest of the native sequence (with
        backbone_only, the backbone alone); 0 outside designed positions."""
    @overload
    def design(
        self,
        structures: Structure,
        *,
        num_seqs: int = 1,
        temperature: Union[float, Sequence[float], None] = None,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
        fixed: Union[str, Sequence[str], None] = None,
        redesign: Union[str, Sequence[str], None] = None,
        tied: Union[str, Sequence[str], None] = None,
        homo_oligomer: bool = False,
        bias: Optional[Mapping[str, float]] = None,
        omit: Optional[str] = None,
        bias_by_residue: Optional[Mapping[str, Mapping[str, float]]] = None,
        omit_by_residue: Optional[Mapping[str, str]] = None,
        backbone_noise: float = 0.0,
    ) -> Designs: ...
    @overload
    def design(
        self,
        structures: Sequence[Structure],
        *,
        num_seqs: int = 1,
        temperature: Union[float, Sequence[float], None] = None,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
        fixed: Union[str, Sequence[str], None] = None,
        redesign: Union[str, Sequence[str], None] = None,
        tied: Union[str, Sequence[str], None] = None,
        homo_oligomer: bool = False,
        bias: Optional[Mapping[str, float]] = None,
        omit: Optional[str] = None,
        bias_by_residue: Optional[Mapping[str, Mapping[str, float]]] = None,
        omit_by_residue: Optional[Mapping[str, str]] = None,
        backbone_noise: float = 0.0,
    ) -> list[Designs]:
        """Designs sequences (`mpnn design`, same numbers for the same seed and options).

        num_seqs: sequences per temperature (`--num_seq_per_target`).
        temperature: one or several sampling temperatures (default 0.1; `--sampling_temp`).
        chains: the chains to design (default all); the others are fixed context.
        fixed / redesign: residue specs ("A1-10 A15") kept native / the only ones designed.
        tied: groups sampled together, "A1,C1|A2-5,C2-5" (or a list of groups).
        homo_oligomer: tie every position across the designed chains (equal lengths).
        bias: added to each letter's logit everywhere, {"W": 2.0}.
        omit: letters never sampled, added to the official default X ("C" → X and C).
        bias_by_residue: {"A12": {"W": 2.0}}; omit_by_residue: {"A1-5": "CW"}.
        backbone_noise: Gaussian noise (Å) added to the backbone of each sample.
        """

StructurePaths = Union[str, PathLike[str], Sequence[Union[str, PathLike[str]]]]

class LigandModel:
    """A LigandMPNN-family checkpoint (ligand_mpnn, protein_mpnn, soluble_mpnn,
    per_residue_label_membrane_mpnn, global_label_membrane_mpnn) loaded once.

    Jobs take structure files (PDB / mmCIF, gzip allowed), read with LigandMPNN's parser (context
    atoms kept); one path gives one result, a list a list. Residue specs name residues by id as
    LigandMPNN does ("A10 B52A", ranges "B82-B82C" in file order, a chain "B"). Every result is a
    dict with `name`, `residue_ids` [L], `designed` [L], `context_atoms`, `warnings` (e.g. context
    atoms near designed residues that the model ignores) and `notes` (context atoms dropped, no
    usable context). The numbers equal `mpnn design / score / probs --weights FILE` for the same
    seed and options.
    """

    @staticmethod
    def load(
        path: Union[str, PathLike[str]], *, model_type: Optional[str] = None, side_chain_context: bool = False
    ) -> LigandModel:
        """model_type=None: ligand_mpnn for atom-context tensors, protein_mpnn for ProteinMPNN's
        layout; membrane checkpoints must be named."""
    @property
    def model_type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def k(self) -> int: ...
    def design(
        self,
        structures: StructurePaths,
        *,
        num_seqs: int = 1,
        temperature: Union[float, Sequence[float], None] = None,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
        fixed: Union[str, Sequence[str], None] = None,
        redesign: Union[str, Sequence[str], None] = None,
        tied: Union[str, Sequence[str], None] = None,
        homo_oligomer: bool = False,
        omit: str = "",
        bias: str = "",
        use_atom_context: bool = True,
        cutoff_for_score: float = 8.0,
        side_chain_context: bool = False,
        zero_occupancy: bool = False,
        transmembrane_buried: Union[str, Sequence[str], None] = None,
        transmembrane_interface: Union[str, Sequence[str], None] = None,
        global_transmembrane_label: int = 0,
    ) -> Union[dict, list[dict]]:
        """Adds `native`, `native_score`, `native_global_score` and `designs`: per design a dict
        with `sequence`, `temperature`, `sample`, `score`, `global_score`, `recovery`,
        `overall_confidence`, `ligand_confidence` (None where the model reads no context atoms),
        `log_probs` [L, 21], `decoding_order` [L]. `bias`: "W:3.0,P:-1"."""
    def score(
        self,
        structures: StructurePaths,
        *,
        passes: int = 1,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
        use_atom_context: bool = True,
        cutoff_for_score: float = 8.0,
        side_chain_context: bool = False,
        zero_occupancy: bool = False,
        transmembrane_buried: Union[str, Sequence[str], None] = None,
        transmembrane_interface: Union[str, Sequence[str], None] = None,
        global_transmembrane_label: int = 0,
    ) -> Union[dict, list[dict]]:
        """Adds `scores`, `global_scores` [passes] and `log_probs` [passes, L, 21]."""
    def probs(
        self,
        structures: StructurePaths,
        *,
        kind: str = "conditional",
        passes: int = 1,
        seed: int = 37,
        chains: Union[str, Sequence[str], None] = None,
        use_atom_context: bool = True,
        cutoff_for_score: float = 8.0,
        side_chain_context: bool = False,
        zero_occupancy: bool = False,
        transmembrane_buried: Union[str, Sequence[str], None] = None,
        transmembrane_interface: Union[str, Sequence[str], None] = None,
        global_transmembrane_label: int = 0,
    ) -> Union[dict, list[dict]]:
        """kind: "unconditional", "conditional" or "backbone_only"; adds `log_probs`
        [passes, L, 21]."""
