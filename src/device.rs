//! `--device auto|cpu|gpu`: where the network runs.
//!
//! - `cpu`: the CPU kernels (always available).
//! - `gpu`: the wgpu backend ([`crate::gpu`]) on a hardware GPU; a software adapter (Mesa's
//!   lavapipe, `DeviceType::Cpu`) only with `MPNN_ALLOW_SOFTWARE_GPU=1`. No usable GPU is an error.
//! - `auto`: a hardware GPU when one is usable, otherwise the CPU (never a software adapter).

use std::fmt;

/// The `--device` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU if one is usable, otherwise the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The GPU (an error when none is usable).
    Gpu,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Gpu => "gpu",
        })
    }
}

/// The device a job runs on, opened once per process.
#[derive(Debug, Clone)]
pub enum Device {
    Cpu,
    #[cfg(feature = "gpu")]
    Gpu(std::sync::Arc<crate::gpu::Gpu>),
}

/// `--device gpu` could not be honoured.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("--device gpu: this mpnn was built without the `gpu` feature (rebuild with default features)")]
    NotBuilt,
    #[cfg(feature = "gpu")]
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
}

impl Device {
    /// Opens the device for `choice`.
    pub fn open(choice: DeviceChoice) -> Result<Device, DeviceError> {
        match choice {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            #[cfg(feature = "gpu")]
            DeviceChoice::Gpu => Ok(Device::Gpu(std::sync::Arc::new(crate::gpu::Gpu::open_requested()?))),
            #[cfg(not(feature = "gpu"))]
            DeviceChoice::Gpu => Err(DeviceError::NotBuilt),
            #[cfg(feature = "gpu")]
            DeviceChoice::Auto => {
                Ok(crate::gpu::Gpu::open_auto().map_or(Device::Cpu, |g| Device::Gpu(std::sync::Arc::new(g))))
            }
            #[cfg(not(feature = "gpu"))]
            DeviceChoice::Auto => Ok(Device::Cpu),
        }
    }

    pub fn is_gpu(&self) -> bool {
        !matches!(self, Device::Cpu)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("CPU"),
            #[cfg(feature = "gpu")]
            Device::Gpu(g) => write!(f, "GPU {}", g.adapter),
        }
    }
}
