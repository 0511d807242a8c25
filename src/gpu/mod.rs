//! The GPU backend (feature `gpu`): wgpu compute shaders (WGSL) on Vulkan, Metal or DX12.
//!
//! What runs here: the edge embedding, the encoder, the decoder (scoring, unconditional and
//! conditional log-probabilities) and the whole autoregressive sampler. Parsing, featurization
//! and the k-NN graph stay on the CPU.
//!
//! Every kernel ([`Kernel`], `kernels.wgsl`) sees the same bindings: a parameter record, the
//! weights, one float arena and one integer arena addressed by offsets. A [`Plan`] is a list of
//! uploads, dispatches and read-backs recorded on the CPU and run as **one command buffer**
//! ([`Gpu::run`]); the arenas are kept between plans and grown when a bigger bucket comes, so
//! buffers and pipelines are created once per length bucket, not per call.
//!
//! Precision: float32, and `--precision f16` on devices with `SHADER_F16` (requested only where
//! the adapter offers it; [`Gpu::supports`]): the f16 model's dense layers are stored as halves
//! and run by `gemm_f16` (`kernels_f16.wgsl`, a second shader module compiled only there) with
//! the CPU's f16 semantics; every other kernel is the float32 one.

pub mod model;

use std::sync::Mutex;

use wgpu::util::DeviceExt;

pub use model::{Draw, GpuModel, SampleItem};

/// The backends mpnn asks wgpu for. Naming them matters: with no Vulkan driver but Mesa's GL
/// present, wgpu would otherwise fall back to its GL backend.
pub const BACKENDS: wgpu::Backends = wgpu::Backends::VULKAN.union(wgpu::Backends::METAL).union(wgpu::Backends::DX12);

/// Environment variable that lets `--device gpu` use a software adapter (Mesa's lavapipe in CI).
pub const ALLOW_SOFTWARE: &str = "MPNN_ALLOW_SOFTWARE_GPU";

/// Errors of the GPU backend.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("--device gpu: no usable GPU found (wgpu found no Vulkan, Metal or DX12 adapter); install the GPU's Vulkan driver (NVIDIA, AMD, Intel) or use --device cpu / auto")]
    NoAdapter,
    #[error("--device gpu: the only adapter found is a software renderer, {name}; set {ALLOW_SOFTWARE}=1 to use it anyway (slow; meant for tests), or use --device cpu / auto")]
    SoftwareOnly { name: String },
    #[error("GPU `{name}`: could not open the device: {message}")]
    Device { name: String, message: String },
    #[error("GPU: {0}")]
    Run(String),
    #[error("GPU: the job needs {needed} MiB in one buffer but the device allows {limit} MiB; use a smaller batch or --device cpu")]
    TooLarge { needed: u64, limit: u64 },
    #[error("--device gpu --precision f16: the GPU {adapter} has no float16 shader support (wgpu feature SHADER_F16); use --precision f32 on it, or a GPU with f16 shaders (or --device cpu, which emulates f16)")]
    NoF16 { adapter: String },
    #[error("--device gpu --precision {precision}: {precision} runs on the CPU only (the GPU computes f32 or f16); use --device cpu (or auto), or --precision f32 / f16 on the GPU")]
    CpuOnlyPrecision { precision: crate::kernels::precision::Precision },
}

/// What the adapter is.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub software: bool,
    pub driver: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        software: info.device_type == wgpu::DeviceType::Cpu,
        driver: [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn software_allowed() -> bool {
    std::env::var(ALLOW_SOFTWARE).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

/// Every adapter of the named backends, hardware first (discrete, integrated, other, software).
fn adapters() -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = BACKENDS;
    let instance = wgpu::Instance::new(desc);
    let mut all = pollster::block_on(instance.enumerate_adapters(BACKENDS));
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    all.sort_by_key(rank);
    all
}

/// The kernels of `kernels.wgsl` (entry point names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gemm,
    /// The f16 dense layer (`kernels_f16.wgsl`; only on devices with SHADER_F16).
    GemmF16,
    Gelu,
    Fill,
    FillInt,
    Copy,
    Gather,
    Scatter,
    AddNorm,
    NodeUpdate,
    LogSoftmax,
    EncPre,
    EncSum,
    DecPre,
    DecSum,
    SampAccum,
    SampFinal,
}

impl Kernel {
    const ALL: [Kernel; 16] = [
        Kernel::Gemm,
        Kernel::Gelu,
        Kernel::Fill,
        Kernel::FillInt,
        Kernel::Copy,
        Kernel::Gather,
        Kernel::Scatter,
        Kernel::AddNorm,
        Kernel::NodeUpdate,
        Kernel::LogSoftmax,
        Kernel::EncPre,
        Kernel::EncSum,
        Kernel::DecPre,
        Kernel::DecSum,
        Kernel::SampAccum,
        Kernel::SampFinal,
    ];
    fn entry(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::GemmF16 => "gemm_f16",
            Kernel::Gelu => "gelu",
            Kernel::Fill => "fill",
            Kernel::FillInt => "fill_int",
            Kernel::Copy => "copy",
            Kernel::Gather => "gather",
            Kernel::Scatter => "scatter",
            Kernel::AddNorm => "add_norm",
            Kernel::NodeUpdate => "node_update",
            Kernel::LogSoftmax => "log_softmax",
            Kernel::EncPre => "enc_pre",
            Kernel::EncSum => "enc_sum",
            Kernel::DecPre => "dec_pre",
            Kernel::DecSum => "dec_sum",
            Kernel::SampAccum => "samp_accum",
            Kernel::SampFinal => "samp_final",
        }
    }
    /// Threads per workgroup of the 1-D kernels.
    fn group(self) -> u32 {
        match self {
            Kernel::AddNorm | Kernel::NodeUpdate | Kernel::LogSoftmax | Kernel::SampAccum | Kernel::SampFinal => 64,
            _ => 256,
        }
    }
}

/// Marks an absent operand in a kernel's parameters.
pub const NONE: u32 = u32::MAX;
/// Set in a weight offset given to [`Plan::gemm`]: the layer's matrix is IEEE halves packed two
/// per u32 word, the rest of the offset counts halves (not words), and the f16 kernel runs it.
pub const HALF: u32 = 1 << 31;
/// Bytes between two parameter records (the uniform dynamic-offset alignment).
const PARAM_STRIDE: u64 = 256;
/// Parameters of one dispatch.
pub type Params = [u32; 32];

/// `f32` as a parameter.
pub fn fbits(v: f32) -> u32 {
    v.to_bits()
}

struct Dispatch {
    kernel: Kernel,
    params: Params,
    groups: [u32; 3],
}

/// A recorded program: arena layout, uploads, dispatches and read-backs. Offsets are in
/// elements (f32 for the float arena, u32 for the integer arena).
#[derive(Default)]
pub struct Plan {
    floats: u64,
    ints: u64,
    up_f: Vec<(u32, Vec<f32>)>,
    up_i: Vec<(u32, Vec<u32>)>,
    dispatches: Vec<Dispatch>,
    reads: Vec<(bool, u32, usize)>,
}

/// A read-back slot of a plan.
#[derive(Debug, Clone, Copy)]
pub struct ReadSlot(usize);

impl Plan {
    pub fn new() -> Self {
        Self::default()
    }
    /// Reserves `n` floats; returns the offset.
    pub fn alloc(&mut self, n: usize) -> u32 {
        let o = self.floats;
        self.floats += (n as u64).div_ceil(64) * 64 + 64;
        o as u32
    }
    /// Reserves `n` integers.
    pub fn alloc_int(&mut self, n: usize) -> u32 {
        let o = self.ints;
        self.ints += (n as u64).div_ceil(64) * 64 + 64;
        o as u32
    }
    /// A new float array holding `data`.
    pub fn upload(&mut self, data: Vec<f32>) -> u32 {
        let o = self.alloc(data.len());
        if !data.is_empty() {
            self.up_f.push((o, data));
        }
        o
    }
    /// A new integer array holding `data`.
    pub fn upload_int(&mut self, data: Vec<u32>) -> u32 {
        let o = self.alloc_int(data.len());
        if !data.is_empty() {
            self.up_i.push((o, data));
        }
        o
    }
    /// Floats in use (for memory reports).
    pub fn float_bytes(&self) -> u64 {
        self.floats * 4
    }
    pub fn int_bytes(&self) -> u64 {
        self.ints * 4
    }
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// A 1-D kernel over `n` work items (grid-stride: at most 65,535 workgroups).
    pub fn run1(&mut self, kernel: Kernel, n: usize, params: &[u32]) {
        if n == 0 {
            return;
        }
        let g = (n as u64).div_ceil(kernel.group() as u64).clamp(1, 65_535) as u32;
        self.push(kernel, params, [g, 1, 1]);
    }

    fn push(&mut self, kernel: Kernel, params: &[u32], groups: [u32; 3]) {
        let mut p = [0u32; 32];
        p[..params.len()].copy_from_slice(params);
        self.dispatches.push(Dispatch { kernel, params: p, groups });
    }

    /// `y[m, :] = x[m, :]·Wᵀ + b` (`w`, `b` in the weights buffer; `b` = [`NONE`] for none).
    /// A `w` with the [`HALF`] bit names f16 weights: the input is rounded to f16 and the f16
    /// kernel runs (on a device with SHADER_F16 only).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(&mut self, m: usize, n: usize, k: usize, x: u32, w: u32, b: u32, y: u32, accumulate: bool) {
        if m == 0 {
            return;
        }
        let (kernel, w) = if w & HALF != 0 { (Kernel::GemmF16, w & !HALF) } else { (Kernel::Gemm, w) };
        let p = [m as u32, n as u32, k as u32, x, w, b, y, accumulate as u32];
        let blocks = (m as u32).div_ceil(64);
        let (gy, gz) = if blocks > 65_535 { (65_535, blocks.div_ceil(65_535)) } else { (blocks, 1) };
        self.push(kernel, &p, [(n as u32).div_ceil(64), gy, gz]);
    }
    pub fn gelu(&mut self, n: usize, off: u32) {
        self.run1(Kernel::Gelu, n, &[n as u32, off]);
    }
    pub fn fill(&mut self, n: usize, off: u32, v: f32) {
        self.run1(Kernel::Fill, n, &[n as u32, off, fbits(v)]);
    }
    pub fn fill_int(&mut self, n: usize, off: u32, v: u32) {
        self.run1(Kernel::FillInt, n, &[n as u32, off, v]);
    }
    /// `dst[i] = src[i % period]` for `i < n`.
    pub fn copy(&mut self, n: usize, src: u32, dst: u32, period: usize) {
        self.run1(Kernel::Copy, n, &[n as u32, src, dst, period as u32]);
    }
    pub fn log_softmax(&mut self, rows: usize, width: usize, input: u32, out: u32) {
        self.run1(Kernel::LogSoftmax, rows, &[rows as u32, width as u32, input, out]);
    }
    /// Reads `n` floats at `off` back after the run.
    pub fn read(&mut self, off: u32, n: usize) -> ReadSlot {
        self.reads.push((false, off, n));
        ReadSlot(self.reads.len() - 1)
    }
    /// Reads `n` integers at `off` back after the run.
    pub fn read_int(&mut self, off: u32, n: usize) -> ReadSlot {
        self.reads.push((true, off, n));
        ReadSlot(self.reads.len() - 1)
    }
}

/// What a plan's read-backs returned.
pub struct Results {
    data: Vec<Vec<u32>>,
}

impl Results {
    pub fn floats(&self, s: ReadSlot) -> Vec<f32> {
        self.data[s.0].iter().map(|&b| f32::from_bits(b)).collect()
    }
    pub fn ints(&self, s: ReadSlot) -> Vec<u32> {
        self.data[s.0].clone()
    }
}

struct Arena {
    floats: wgpu::Buffer,
    ints: wgpu::Buffer,
    params: wgpu::Buffer,
    staging: wgpu::Buffer,
}

/// An open GPU: device, queue, the compiled kernels, and the arenas kept between plans.
pub struct Gpu {
    pub adapter: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
    arena: Mutex<Option<Arena>>,
    /// The largest single buffer the device allows, in bytes.
    pub max_buffer: u64,
    /// Whether the device has float16 shaders (SHADER_F16, requested when the adapter offers
    /// it): `--precision f16` runs here only then.
    pub f16: bool,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gpu({})", self.adapter)
    }
}

impl Gpu {
    /// The best hardware adapter, if any (software adapters only with `allow_software`).
    pub fn open(allow_software: bool) -> Result<Gpu, GpuError> {
        let all = adapters();
        let found: Vec<String> = all.iter().map(|a| summary(&a.get_info()).to_string()).collect();
        let chosen = all.into_iter().find(|a| allow_software || a.get_info().device_type != wgpu::DeviceType::Cpu);
        match chosen {
            Some(a) => Self::with_adapter(a),
            None if found.is_empty() => Err(GpuError::NoAdapter),
            None => Err(GpuError::SoftwareOnly { name: found.join("; ") }),
        }
    }

    /// `--device gpu`: a hardware GPU, or a software one when [`ALLOW_SOFTWARE`] is set.
    pub fn open_requested() -> Result<Gpu, GpuError> {
        Self::open(software_allowed())
    }

    /// `--device auto`: a hardware GPU or nothing (never a software adapter).
    pub fn open_auto() -> Option<Gpu> {
        Self::open(false).ok()
    }

    fn with_adapter(adapter: wgpu::Adapter) -> Result<Gpu, GpuError> {
        let info = summary(&adapter.get_info());
        let lim = adapter.limits();
        let mut limits = wgpu::Limits::downlevel_defaults();
        limits.max_storage_buffer_binding_size = lim.max_storage_buffer_binding_size;
        limits.max_buffer_size = lim.max_buffer_size;
        limits.max_storage_buffers_per_shader_stage = 4;
        limits.max_compute_workgroup_storage_size = lim.max_compute_workgroup_storage_size.max(16384);
        limits.max_compute_invocations_per_workgroup = 256;
        limits.max_compute_workgroup_size_x = 256;
        limits.max_compute_workgroup_size_y = 256;
        limits.max_compute_workgroups_per_dimension = 65_535;
        limits.max_dynamic_uniform_buffers_per_pipeline_layout = 1;
        // SHADER_F16 only where the adapter has it (the f16 dense layer); nothing else is asked.
        // `MPNN_GPU_NO_F16=1` leaves it out (to test the devices without it).
        let f16 = adapter.features().contains(wgpu::Features::SHADER_F16)
            && std::env::var("MPNN_GPU_NO_F16").map_or(true, |v| v.is_empty() || v == "0");
        let desc = wgpu::DeviceDescriptor {
            label: Some("mpnn"),
            required_features: if f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() },
            required_limits: limits,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| GpuError::Device { name: info.name.clone(), message: e.to_string() })?;
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("mpnn"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(128),
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, false),
                storage(3, false),
            ],
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("mpnn"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("mpnn kernels"),
            source: wgpu::ShaderSource::Wgsl(include_str!("kernels.wgsl").into()),
        });
        let half_module = f16.then(|| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("mpnn f16 kernels"),
                source: wgpu::ShaderSource::Wgsl(include_str!("kernels_f16.wgsl").into()),
            })
        });
        let pipeline = |k: Kernel, module: &wgpu::ShaderModule| {
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(k.entry()),
                layout: Some(&pl),
                module,
                entry_point: Some(k.entry()),
                compilation_options: Default::default(),
                cache: None,
            });
            (k, p)
        };
        let mut pipelines: Vec<_> = Kernel::ALL.iter().map(|&k| pipeline(k, &module)).collect();
        if let Some(m) = &half_module {
            pipelines.push(pipeline(Kernel::GemmF16, m));
        }
        let max_buffer = lim.max_storage_buffer_binding_size.min(lim.max_buffer_size);
        Ok(Gpu { adapter: info, device, queue, layout, pipelines, arena: Mutex::new(None), max_buffer, f16 })
    }

    /// Whether this device runs a model in `precision`: f32 always, f16 with SHADER_F16; bf16
    /// and int8 are CPU-only formats.
    pub fn supports(&self, precision: crate::kernels::precision::Precision) -> Result<(), GpuError> {
        use crate::kernels::precision::Precision;
        match precision {
            Precision::F32 => Ok(()),
            Precision::F16 if self.f16 => Ok(()),
            Precision::F16 => Err(GpuError::NoF16 { adapter: self.adapter.to_string() }),
            p => Err(GpuError::CpuOnlyPrecision { precision: p }),
        }
    }

    /// A read-only storage buffer holding `data` (the weights).
    pub fn weights_buffer(&self, data: &[f32]) -> wgpu::Buffer {
        let mut bytes = Vec::with_capacity(data.len().max(1) * 4);
        for v in data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        if bytes.is_empty() {
            bytes.extend_from_slice(&[0; 4]);
        }
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("weights"),
            contents: &bytes,
            usage: wgpu::BufferUsages::STORAGE,
        })
    }

    fn pipeline(&self, k: Kernel) -> &wgpu::ComputePipeline {
        &self
            .pipelines
            .iter()
            .find(|(p, _)| *p == k)
            .expect("every kernel has a pipeline (f16: on SHADER_F16 devices)")
            .1
    }

    /// Bytes of the arenas currently held on the device.
    pub fn arena_bytes(&self) -> u64 {
        let cell = self.arena.lock().unwrap_or_else(|e| e.into_inner());
        cell.as_ref().map_or(0, |a| a.floats.size() + a.ints.size() + a.params.size() + a.staging.size())
    }

    /// Runs `plan` with `weights` as one command buffer and returns its read-backs.
    pub fn run(&self, weights: &wgpu::Buffer, plan: &Plan) -> Result<Results, GpuError> {
        let float_bytes = (plan.floats * 4).max(256);
        let int_bytes = (plan.ints * 4).max(256);
        for need in [float_bytes, int_bytes] {
            if need > self.max_buffer {
                return Err(GpuError::TooLarge { needed: need >> 20, limit: self.max_buffer >> 20 });
            }
        }
        let param_bytes = (plan.dispatches.len() as u64 * PARAM_STRIDE).max(256);
        let read_bytes: u64 = plan.reads.iter().map(|r| r.2 as u64 * 4).sum::<u64>().max(4);
        let mut cell = self.arena.lock().unwrap_or_else(|e| e.into_inner());
        // Device errors (out of memory, validation) become a `GpuError`, never a panic.
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let fits = |a: &Arena| {
            a.floats.size() >= float_bytes
                && a.ints.size() >= int_bytes
                && a.params.size() >= param_bytes
                && a.staging.size() >= read_bytes
        };
        if !cell.as_ref().is_some_and(fits) {
            let old = cell.take();
            let grow = |need: u64, have: Option<u64>| need.max(have.unwrap_or(0)).next_multiple_of(256);
            let mk = |label: &str, size: u64, usage: wgpu::BufferUsages| {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let st = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            *cell = Some(Arena {
                floats: mk("floats", grow(float_bytes, old.as_ref().map(|a| a.floats.size())), st),
                ints: mk("ints", grow(int_bytes, old.as_ref().map(|a| a.ints.size())), st),
                params: mk(
                    "params",
                    grow(param_bytes, old.as_ref().map(|a| a.params.size())),
                    wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                ),
                staging: mk(
                    "staging",
                    grow(read_bytes, old.as_ref().map(|a| a.staging.size())),
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                ),
            });
        }
        let arena = cell.as_ref().expect("arena allocated above");
        for (off, data) in &plan.up_f {
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.queue.write_buffer(&arena.floats, *off as u64 * 4, &bytes);
        }
        for (off, data) in &plan.up_i {
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.queue.write_buffer(&arena.ints, *off as u64 * 4, &bytes);
        }
        if !plan.dispatches.is_empty() {
            let mut bytes = vec![0u8; plan.dispatches.len() * PARAM_STRIDE as usize];
            for (i, d) in plan.dispatches.iter().enumerate() {
                for (j, v) in d.params.iter().enumerate() {
                    bytes[i * PARAM_STRIDE as usize + j * 4..][..4].copy_from_slice(&v.to_le_bytes());
                }
            }
            self.queue.write_buffer(&arena.params, 0, &bytes);
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("mpnn"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &arena.params,
                        offset: 0,
                        size: wgpu::BufferSize::new(128),
                    }),
                },
                wgpu::BindGroupEntry { binding: 1, resource: weights.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: arena.floats.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: arena.ints.as_entire_binding() },
            ],
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("mpnn") });
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("mpnn"), timestamp_writes: None });
            let mut current = None;
            for (i, d) in plan.dispatches.iter().enumerate() {
                if current != Some(d.kernel) {
                    pass.set_pipeline(self.pipeline(d.kernel));
                    current = Some(d.kernel);
                }
                pass.set_bind_group(0, &bind, &[(i as u64 * PARAM_STRIDE) as u32]);
                pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
            }
        }
        let mut at = 0u64;
        for &(int, off, n) in &plan.reads {
            let src = if int { &arena.ints } else { &arena.floats };
            if n > 0 {
                enc.copy_buffer_to_buffer(src, off as u64 * 4, &arena.staging, at, n as u64 * 4);
            }
            at += n as u64 * 4;
        }
        self.queue.submit([enc.finish()]);
        let failed = match (pollster::block_on(invalid.pop()), pollster::block_on(oom.pop())) {
            (Some(e), _) => Some(format!("the device rejected the work: {e}")),
            (None, Some(e)) => Some(format!("out of device memory: {e}")),
            (None, None) => None,
        };
        if let Some(message) = failed {
            *cell = None; // start from fresh buffers next time
            return Err(GpuError::Run(message));
        }
        let mut data = Vec::new();
        if at > 0 {
            let slice = arena.staging.slice(..at);
            let (tx, rx) = std::sync::mpsc::channel();
            slice.map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Run(e.to_string()))?;
            rx.recv()
                .map_err(|e| GpuError::Run(e.to_string()))?
                .map_err(|e| GpuError::Run(format!("reading results back: {e}")))?;
            {
                let view = slice.get_mapped_range().map_err(|e| GpuError::Run(format!("{e:?}")))?;
                let mut at = 0usize;
                for &(_, _, n) in &plan.reads {
                    let bytes = &view[at..at + n * 4];
                    data.push(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect());
                    at += n * 4;
                }
            }
            arena.staging.unmap();
        } else {
            self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Run(e.to_string()))?;
            data = plan.reads.iter().map(|_| Vec::new()).collect();
        }
        Ok(Results { data })
    }
}
