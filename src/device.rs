//! `--device auto|cpu|gpu`: where the network runs.
//!
//! - `cpu`: the CPU kernels (always available).
//! - `gpu`: the wgpu backend ([`crate::gpu`]) on a hardware GPU; a software adapter (Mesa's
//!   lavapipe, `DeviceType::Cpu`) only with `MPNN_ALLOW_SOFTWARE_GPU=1`. No usable GPU is an error.
//! - `auto`: a hardware GPU when one is usable, otherwise the CPU (never a software adapter).
//!
//! With `--precision` ([`Device::open_for`]): the GPU computes `f32`, and `f16` where the device
//! has float16 shaders (wgpu's SHADER_F16). `bf16` and `int8` are CPU-only formats. So
//! `--device gpu` with bf16/int8, or with f16 on a GPU without f16 shaders, is an error naming
//! the adapter and the fix; `--device auto` then takes the CPU and says so in one line on stderr
//! (bf16/int8 without opening a GPU at all).

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

    /// [`Device::open`] for a model computed in `precision`: `gpu` is an error when the GPU
    /// cannot run it; `auto` falls back to the CPU with a note (`note`: one line for stderr).
    pub fn open_for(
        choice: DeviceChoice,
        precision: crate::kernels::precision::Precision,
        note: &mut dyn FnMut(&str),
    ) -> Result<Device, DeviceError> {
        if let Some(cpu) = Device::cpu_only_for(choice, precision, note) {
            return Ok(cpu);
        }
        Device::open(choice)?.for_precision(choice, precision, note)
    }

    /// `--device auto` with a CPU-only precision (bf16, int8): the CPU, with a note, and no GPU
    /// opened; `None` otherwise.
    pub fn cpu_only_for(
        choice: DeviceChoice,
        precision: crate::kernels::precision::Precision,
        note: &mut dyn FnMut(&str),
    ) -> Option<Device> {
        use crate::kernels::precision::Precision;
        (choice == DeviceChoice::Auto && matches!(precision, Precision::Bf16 | Precision::Int8)).then(|| {
            note(&format!("device: --precision {precision} runs on the CPU only; --device auto takes the CPU"));
            Device::Cpu
        })
    }

    /// This device (opened for `choice`) for a model computed in `precision`: itself when it runs
    /// that precision; otherwise an error for `gpu` and the CPU with a note for `auto`.
    pub fn for_precision(
        self,
        choice: DeviceChoice,
        precision: crate::kernels::precision::Precision,
        note: &mut dyn FnMut(&str),
    ) -> Result<Device, DeviceError> {
        #[cfg(feature = "gpu")]
        if let Device::Gpu(g) = &self {
            if let Err(e) = g.supports(precision) {
                if choice == DeviceChoice::Gpu {
                    return Err(e.into());
                }
                note(&format!(
                    "device: the GPU {} cannot run --precision {precision} ({}); --device auto takes the CPU",
                    g.adapter,
                    if precision == crate::kernels::precision::Precision::F16 {
                        "no f16 shaders"
                    } else {
                        "CPU-only format"
                    }
                ));
                return Ok(Device::Cpu);
            }
        }
        let _ = (choice, precision, note);
        Ok(self)
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
