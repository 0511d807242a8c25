//! [`Model`]: a checkpoint loaded for the jobs, with its name, its file and the approximations
//! (fewer neighbours, lower precision) it was configured with.

use std::path::{Path, PathBuf};

use super::{JobError, Labels};
use crate::checkpoint::{self, CheckpointError, WeightsQuery};
use crate::kernels::precision::Precision;
use crate::pipeline::Engine;
use crate::preset::Preset;

/// A model ready to run: the engine, the file it came from and what the official output headers
/// call it.
#[derive(Debug, Clone)]
pub struct Model {
    engine: Engine,
    path: PathBuf,
    num_edges: usize,
    warnings: Vec<String>,
}

impl Model {
    /// Finds the weights `query` names (explicit file, official folder, `$MPNN_WEIGHTS`, the
    /// cache, else a verified download unless offline; see [`checkpoint::locate`]) and loads them
    /// as the exact float32 model at the checkpoint's own k. With `ca_only`, the checkpoint must
    /// (`Some(true)`) or must not (`Some(false)`) be a CA-only one.
    pub fn load(query: &WeightsQuery, ca_only: Option<bool>, labels: &Labels) -> Result<Model, JobError> {
        let path = checkpoint::resolve(query).map_err(|e| match e {
            CheckpointError::UnknownModel { name, family, valid, .. } => {
                CheckpointError::UnknownModel { name, family, valid, own: labels.own_weights }
            }
            CheckpointError::Offline { model, url, cache_path, .. } => {
                CheckpointError::Offline { model, url, cache_path, own: labels.own_weights }
            }
            e => e,
        })?;
        Model::from_file(&path, ca_only, labels)
    }

    /// Loads a `.pt` or `.safetensors` file as the exact float32 model at its own k.
    pub fn from_file(path: &Path, ca_only: Option<bool>, labels: &Labels) -> Result<Model, JobError> {
        Model::from_checkpoint(&checkpoint::load(path)?, path, ca_only, labels)
    }

    /// [`Model::from_file`] for a checkpoint already read from `path`.
    pub fn from_checkpoint(
        ckpt: &checkpoint::Checkpoint,
        path: &Path,
        ca_only: Option<bool>,
        labels: &Labels,
    ) -> Result<Model, JobError> {
        let arch = ckpt.architecture()?;
        match ca_only {
            Some(false) if arch.ca_only => {
                return Err(JobError::WantsCaOnly { path: path.display().to_string(), ca_only: labels.ca_only })
            }
            Some(true) if !arch.ca_only => {
                return Err(JobError::WantsFullBackbone { path: path.display().to_string(), ca_only: labels.ca_only })
            }
            _ => {}
        }
        Ok(Model {
            engine: Engine::new(ckpt, arch)?,
            path: path.to_path_buf(),
            num_edges: ckpt.num_edges,
            warnings: Vec::new(),
        })
    }

    /// The same checkpoint with a preset and explicit `k` / `precision` applied (the explicit
    /// ones win over the preset's). Every approximation of the float32 model is listed in
    /// [`Model::warnings`].
    pub fn configured(
        &self,
        preset: Option<Preset>,
        k: Option<usize>,
        precision: Option<Precision>,
        labels: &Labels,
    ) -> Result<Model, JobError> {
        let arch = self.engine.arch();
        if let Some(p) = preset {
            p.check(&arch, &self.path.display().to_string())?;
        }
        let explicit_k = k.is_some();
        let k = k.or(preset.and_then(Preset::k));
        let precision = precision.or(preset.map(Preset::precision)).unwrap_or_default();
        if k == Some(0) {
            return Err(JobError::ZeroK { option: labels.k });
        }
        let mut warnings = Vec::new();
        if let Some(k) = k.filter(|&k| k != arch.k) {
            let what = if k < arch.k { "fewer" } else { "more" };
            let from = match (explicit_k, preset) {
                (false, Some(p)) => format!("--preset {p} runs k = {k}"),
                _ => format!("{} {k}", labels.k),
            };
            warnings.push(format!(
                "{from}: {what} neighbours than the {} this checkpoint was trained with; the results approximate \
                 the model (the official code divides message sums by a fixed 30, not by k); `mpnn eval` measures \
                 the cost",
                arch.k
            ));
        }
        if precision != Precision::F32 {
            warnings.push(format!(
                "{} {precision}: the dense layers run in {precision}, an approximation of the float32 model \
                 (coordinates, neighbours and RBFs stay float32); `mpnn eval` measures the cost",
                labels.precision
            ));
        }
        Ok(Model {
            engine: self.engine.with_options(k, precision),
            path: self.path.clone(),
            num_edges: self.num_edges,
            warnings,
        })
    }

    /// The engine that runs the network.
    /// The same model running on `device` (weights uploaded to a GPU once, here).
    pub fn on_device(&self, device: &crate::device::Device) -> Model {
        Model { engine: self.engine.on_device(device), ..self.clone() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The weights file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name the FASTA headers give the model: the file name without its extension, like the
    /// official `model_name=` (`v_48_020` for the official weights, `full_k48` for
    /// `full_k48.safetensors`).
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Whether the model reads CA coordinates only.
    pub fn ca_only(&self) -> bool {
        self.engine.arch().ca_only
    }

    /// The checkpoint's `num_edges` (the k it was trained with).
    pub fn num_edges(&self) -> usize {
        self.num_edges
    }

    /// The checkpoint's training noise level (Å).
    pub fn noise_level(&self) -> f64 {
        self.engine.noise_level
    }

    /// The approximations this configuration makes, one sentence each (empty for the exact model).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
