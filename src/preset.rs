//! Named speed/accuracy presets: the seeds' variants, each an architecture + k + batch +
//! precision, usable as `--preset NAME`.
//!
//! | preset | architecture | k | batch | precision |
//! | --- | --- | ---: | ---: | --- |
//! | `baseline` | full (3 + 3 layers, hidden 128) | checkpoint's own (48) | 1 | f32 |
//! | `fast` | full | 16 | 1 | f32 |
//! | `balanced` | full | 32 | 1 | f32 |
//! | `minimal` | pruned (e.g. 2 + 2, hidden 64) | 48 | 1 | f32 |
//! | `minimal-fast` | pruned | 16 | 1 | f32 |
//! | `ultimate` | pruned | 16 | 4 | f32 |
//! | `extreme` | pruned | 16 | 8 | f32 |
//!
//! Only `baseline` on a full checkpoint is the official model exactly; every other preset is an
//! approximation whose cost `mpnn eval` measures. "batch" is how many sequences of a structure
//! are processed together: in mpnn it never changes a result (only speed), so it is what
//! `mpnn eval` and `mpnn bench` time with; `mpnn design` always decodes a structure's samples
//! together. Pruned presets need a pruned checkpoint and refuse a full one (and the other way
//! round): a preset is a choice of architecture.
//!
//! ```
//! use mpnn::preset::Preset;
//! let p: Preset = "minimal-fast".parse().unwrap();
//! assert_eq!(p.to_string(), "minimal-fast");
//! assert_eq!(p.k(), Some(16));
//! assert!(p.needs_pruned());
//! assert!("turbo".parse::<Preset>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use crate::checkpoint::Architecture;
use crate::kernels::precision::Precision;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    Baseline,
    Fast,
    Balanced,
    Minimal,
    MinimalFast,
    Ultimate,
    Extreme,
}

impl Preset {
    pub const ALL: [Preset; 7] = [
        Preset::Baseline,
        Preset::Fast,
        Preset::Balanced,
        Preset::Minimal,
        Preset::MinimalFast,
        Preset::Ultimate,
        Preset::Extreme,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Baseline => "baseline",
            Preset::Fast => "fast",
            Preset::Balanced => "balanced",
            Preset::Minimal => "minimal",
            Preset::MinimalFast => "minimal-fast",
            Preset::Ultimate => "ultimate",
            Preset::Extreme => "extreme",
        }
    }

    /// Inference-time neighbours (`None`: the checkpoint's own k).
    pub fn k(self) -> Option<usize> {
        match self {
            Preset::Baseline => None,
            Preset::Balanced => Some(32),
            Preset::Minimal => Some(48),
            Preset::Fast | Preset::MinimalFast | Preset::Ultimate | Preset::Extreme => Some(16),
        }
    }

    /// Sequences of one structure processed together.
    pub fn batch(self) -> usize {
        match self {
            Preset::Ultimate => 4,
            Preset::Extreme => 8,
            _ => 1,
        }
    }

    pub fn precision(self) -> Precision {
        Precision::F32
    }

    /// Whether the preset is defined on a pruned checkpoint (fewer layers or a smaller hidden
    /// width than the full model).
    pub fn needs_pruned(self) -> bool {
        matches!(self, Preset::Minimal | Preset::MinimalFast | Preset::Ultimate | Preset::Extreme)
    }

    /// One line for help texts and tables.
    pub fn describe(self) -> String {
        format!(
            "{} architecture, k = {}, batch {}, {}",
            if self.needs_pruned() { "pruned" } else { "full" },
            self.k().map_or("checkpoint's own".to_string(), |k| k.to_string()),
            self.batch(),
            self.precision()
        )
    }

    /// Checks that a checkpoint of architecture `arch` (from `source`) is the kind this preset
    /// is defined on.
    pub fn check(self, arch: &Architecture, source: &str) -> Result<(), PresetError> {
        let pruned = is_pruned(arch);
        if self.needs_pruned() && !pruned {
            return Err(PresetError::NeedsPruned { preset: self, file: source.to_string() });
        }
        if !self.needs_pruned() && pruned {
            return Err(PresetError::NeedsFull {
                preset: self,
                file: source.to_string(),
                layers: format!("{} + {} layers, hidden {}", arch.encoder_layers, arch.decoder_layers, arch.hidden),
            });
        }
        Ok(())
    }
}

/// A pruned checkpoint: fewer layers or a narrower hidden width than the official 3 + 3 × 128.
pub fn is_pruned(arch: &Architecture) -> bool {
    arch.hidden < 128 || arch.encoder_layers < 3 || arch.decoder_layers < 3
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error("`{0}` is not a preset; use one of baseline, fast, balanced, minimal, minimal-fast, ultimate, extreme")]
    Unknown(String),
    #[error(
        "preset `{preset}` runs a pruned checkpoint (e.g. 2 + 2 layers, hidden 64), but {file} is the full \
         architecture; pass a pruned checkpoint (--weights FILE) or use baseline, fast or balanced"
    )]
    NeedsPruned { preset: Preset, file: String },
    #[error(
        "preset `{preset}` runs the full architecture (3 + 3 layers, hidden 128), but {file} is pruned ({layers}); \
         use minimal, minimal-fast, ultimate or extreme with it"
    )]
    NeedsFull { preset: Preset, file: String, layers: String },
}

impl FromStr for Preset {
    type Err = PresetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.to_ascii_lowercase().replace(['_', '+'], "-");
        Preset::ALL.into_iter().find(|p| p.name() == norm).ok_or_else(|| PresetError::Unknown(s.to_string()))
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(hidden: usize, layers: usize) -> Architecture {
        Architecture { hidden, encoder_layers: layers, decoder_layers: layers, k: 48, ca_only: false, vocab: 21 }
    }

    #[test]
    fn names_round_trip_and_aliases() {
        for p in Preset::ALL {
            assert_eq!(p.to_string().parse::<Preset>().unwrap(), p);
        }
        assert_eq!("Minimal_Fast".parse::<Preset>().unwrap(), Preset::MinimalFast);
        assert_eq!("minimal+fast".parse::<Preset>().unwrap(), Preset::MinimalFast);
        assert!("turbo".parse::<Preset>().unwrap_err().to_string().contains("baseline, fast"));
    }

    #[test]
    fn architecture_checks() {
        let full = arch(128, 3);
        let small = arch(64, 2);
        assert!(Preset::Fast.check(&full, "f.pt").is_ok());
        assert!(Preset::Extreme.check(&small, "s.pt").is_ok());
        let e = Preset::Minimal.check(&full, "f.pt").unwrap_err().to_string();
        assert!(e.contains("pruned checkpoint") && e.contains("f.pt"), "{e}");
        let e = Preset::Baseline.check(&small, "s.pt").unwrap_err().to_string();
        assert!(e.contains("2 + 2 layers, hidden 64"), "{e}");
    }

    #[test]
    fn the_seeds_table() {
        let rows: Vec<(Option<usize>, usize)> = Preset::ALL.iter().map(|p| (p.k(), p.batch())).collect();
        assert_eq!(
            rows,
            vec![(None, 1), (Some(16), 1), (Some(32), 1), (Some(48), 1), (Some(16), 1), (Some(16), 4), (Some(16), 8)]
        );
    }
}
