//! Which instruction set the kernels run on, decided once per process.
//!
//! Three paths, best first:
//!
//! - [`Isa::Avx512`]: x86-64 with AVX-512F (and AVX2 + FMA, which every AVX-512 CPU has);
//! - [`Isa::Avx2`]: x86-64 with AVX2 + FMA;
//! - [`Isa::Portable`]: plain Rust written so that LLVM vectorizes it — the path aarch64 (NEON,
//!   where FMA is baseline) and every other target takes.
//!
//! The best path the CPU supports is chosen on first use; `MPNN_ISA=avx512|avx2|portable` forces
//! one (for tests and benchmarks). An unknown value, or a path the CPU lacks, is an error that
//! names the variable ([`init`] returns it; the command line calls it before any work).
//!
//! Every float32 kernel computes each output as one fused multiply-add chain over `k` in the same
//! order on every path (see [`super::gemm`]), so the path changes the speed, never a bit of the
//! result.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that forces a path.
pub const ENV: &str = "MPNN_ISA";

/// An instruction-set path of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// Every path, best first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// The CPU features the path needs, as `lscpu` spells them (empty for the portable path).
    pub fn required_features(self) -> &'static [&'static str] {
        match self {
            Isa::Avx512 => &["avx512f", "avx2", "fma"],
            Isa::Avx2 => &["avx2", "fma"],
            Isa::Portable => &[],
        }
    }

    /// The first required feature this CPU lacks (`None`: the path runs here).
    pub fn missing_feature(self) -> Option<&'static str> {
        self.required_features().iter().copied().find(|f| !cpu_has(f))
    }

    /// Whether this CPU can run the path.
    pub fn supported(self) -> bool {
        self.missing_feature().is_none()
    }

    /// The best path this CPU supports.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().find(|i| i.supported()).unwrap_or(Isa::Portable)
    }

    /// Every path this CPU supports, best first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    fn code(self) -> u8 {
        match self {
            Isa::Avx512 => 1,
            Isa::Avx2 => 2,
            Isa::Portable => 3,
        }
    }

    fn from_code(c: u8) -> Option<Isa> {
        Isa::ALL.into_iter().find(|i| i.code() == c)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runtime CPU feature detection by `lscpu` name (`false` on other architectures).
pub fn cpu_has(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match feature {
            "avx512f" => is_x86_feature_detected!("avx512f"),
            "avx512bw" => is_x86_feature_detected!("avx512bw"),
            "avx512_vnni" | "avx512vnni" => is_x86_feature_detected!("avx512vnni"),
            "avx512vl" => is_x86_feature_detected!("avx512vl"),
            "avx_vnni" | "avxvnni" => is_x86_feature_detected!("avxvnni"),
            "avx512_bf16" | "avx512bf16" => {
                is_x86_feature_detected!("avx512bf16") && is_x86_feature_detected!("avx512bw")
            }
            // CPU, OS state and the process's tile permission (see `bf16::amx::detect`).
            "amx_bf16" | "amx-bf16" => super::bf16::amx::detect().is_ok(),
            "avx2" => is_x86_feature_detected!("avx2"),
            "fma" => is_x86_feature_detected!("fma"),
            "avx" => is_x86_feature_detected!("avx"),
            "f16c" => is_x86_feature_detected!("f16c"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// A bad `MPNN_ISA` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    #[error("{ENV}={0}: not an instruction-set path; use avx512, avx2 or portable (or unset {ENV} for the best one)")]
    Unknown(String),
    #[error("{ENV}={isa}: this CPU lacks {missing}; paths it supports: {available}")]
    Unsupported { isa: Isa, missing: &'static str, available: String },
}

impl FromStr for Isa {
    type Err = IsaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" | "avx512f" => Ok(Isa::Avx512),
            "avx2" => Ok(Isa::Avx2),
            "portable" | "generic" | "scalar" => Ok(Isa::Portable),
            _ => Err(IsaError::Unknown(s.to_string())),
        }
    }
}

/// Checks that `isa` runs on this CPU.
pub fn check(isa: Isa) -> Result<Isa, IsaError> {
    match isa.missing_feature() {
        None => Ok(isa),
        Some(missing) => Err(IsaError::Unsupported {
            isa,
            missing,
            available: Isa::available().iter().map(|i| i.name()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The path a value of `MPNN_ISA` asks for (`None` or empty: the best supported one).
pub fn from_env_value(value: Option<&str>) -> Result<Isa, IsaError> {
    match value.map(str::trim) {
        None | Some("") => Ok(Isa::best()),
        Some(v) => check(v.parse()?),
    }
}

/// The path in use (0 = not decided yet).
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Decides the path from `MPNN_ISA` and the CPU (once; later calls return the same path), or
/// explains why the variable's value cannot be used.
pub fn init() -> Result<Isa, IsaError> {
    if let Some(isa) = Isa::from_code(ACTIVE.load(Ordering::Relaxed)) {
        return Ok(isa);
    }
    let value = std::env::var(ENV).ok();
    let isa = from_env_value(value.as_deref())?;
    // A concurrent first call computes the same value; whichever store lands first wins.
    let _ = ACTIVE.compare_exchange(0, isa.code(), Ordering::Relaxed, Ordering::Relaxed);
    Ok(Isa::from_code(ACTIVE.load(Ordering::Relaxed)).unwrap_or(isa))
}

/// The path every kernel call uses. Panics with [`init`]'s message when `MPNN_ISA` is bad (the
/// command line checks it first, so only library users who skip [`init`] can meet the panic).
#[inline]
pub fn active() -> Isa {
    match Isa::from_code(ACTIVE.load(Ordering::Relaxed)) {
        Some(isa) => isa,
        None => init().unwrap_or_else(|e| panic!("{e}")),
    }
}

/// Switches every later kernel call in this process to `isa` (after checking that the CPU has
/// it). For tests and benchmarks that compare paths in one process; results do not depend on it.
pub fn force(isa: Isa) -> Result<(), IsaError> {
    check(isa)?;
    ACTIVE.store(isa.code(), Ordering::Relaxed);
    Ok(())
}

/// The line a test prints for a path this CPU cannot run (never a silent pass).
pub fn skip_message(isa: Isa) -> Option<String> {
    isa.missing_feature().map(|f| format!("skipped: CPU lacks {f} (path {isa})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_errors_name_the_variable() {
        assert_eq!(from_env_value(None).unwrap(), Isa::best());
        assert_eq!(from_env_value(Some("")).unwrap(), Isa::best());
        assert_eq!(from_env_value(Some("portable")).unwrap(), Isa::Portable);
        let e = from_env_value(Some("neon9")).unwrap_err().to_string();
        assert!(e.contains("MPNN_ISA=neon9") && e.contains("avx512, avx2 or portable"), "{e}");
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
            match isa.missing_feature() {
                None => assert_eq!(from_env_value(Some(isa.name())).unwrap(), isa),
                Some(f) => {
                    let e = from_env_value(Some(isa.name())).unwrap_err().to_string();
                    assert!(e.contains(&format!("MPNN_ISA={isa}")) && e.contains(f), "{e}");
                }
            }
        }
        assert!(Isa::Portable.supported());
        assert!(Isa::available().contains(&Isa::best()));
    }
}
