//! Checkpoints: a module's `state_dict` as a safetensors file with PyTorch's names,
//! so files written by `safetensors.torch.save_file(model.state_dict(), path)` load
//! into the equivalent kiln model and kiln's files load into PyTorch.
//!
//! Loading is strict and atomic: every entry is checked (names, shapes, dtypes) and
//! decoded before the first parameter is written, so an error leaves the module as
//! it was. Saving writes a temporary file next to the target and renames it into
//! place, so a crash never leaves a half-written checkpoint under the target name.

use super::module::{collect_entries, Module};
use crate::backend::CpuStorage;
use crate::{DType, Device, Error, Result, Tensor};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `module`'s state dict to `path` as safetensors. See [`Module::save`].
pub fn save(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let ckpt_err = |msg: String| Error::Checkpoint {
        path: path.display().to_string(),
        msg,
    };
    let state = module.state_dict();
    let mut names = HashSet::new();
    let mut encoded = Vec::with_capacity(state.len());
    for (name, tensor) in &state {
        if !names.insert(name.as_str()) {
            return Err(ckpt_err(format!(
                "two tensors are named `{name}`; every parameter and buffer needs a unique name"
            )));
        }
        encoded.push((
            name.clone(),
            tensor.dtype(),
            tensor.shape().to_vec(),
            le_bytes(tensor)?,
        ));
    }
    let views = encoded
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(st_dtype(*dtype), shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| ckpt_err(format!("cannot encode `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    // The same metadata as safetensors.torch, so PyTorch tools recognise the file.
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| ckpt_err(format!("cannot serialize: {e}")))?;
    write_atomically(path, &bytes)
}

/// Reads the safetensors file at `path` into `module`. See [`Module::load`].
pub fn load(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Checkpoint {
        path: shown.clone(),
        msg: format!("not a valid safetensors file: {e}"),
    })?;
    let mut state = Vec::with_capacity(file.len());
    let mut bad = Vec::new();
    for (name, view) in file.iter() {
        match from_view(&view) {
            Ok(tensor) => state.push((name.to_owned(), tensor)),
            Err(why) => bad.push(format!("`{name}` {why}")),
        }
    }
    if !bad.is_empty() {
        return Err(Error::Checkpoint {
            path: shown,
            msg: format!("unreadable entries: {}", bad.join("; ")),
        });
    }
    load_entries(module, &shown, &state)
}

/// Validates every entry of `state` against `module`, then copies them in. Errors
/// name `source` (a path, or "state_dict") and every offending key.
pub(crate) fn load_entries<M: Module + ?Sized>(
    module: &M,
    source: &str,
    state: &[(String, Tensor)],
) -> Result<()> {
    let targets = collect_entries(module);
    let mut given: HashMap<&str, &Tensor> = HashMap::with_capacity(state.len());
    let mut problems = Vec::new();
    for (name, tensor) in state {
        if given.insert(name.as_str(), tensor).is_some() {
            problems.push(format!("key `{name}` appears twice"));
        }
    }
    let expected: HashSet<&str> = targets.iter().map(|(name, _)| name.as_str()).collect();
    let missing: Vec<&str> = targets
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !given.contains_key(name))
        .collect();
    let mut unexpected: Vec<&str> = given
        .keys()
        .copied()
        .filter(|name| !expected.contains(name))
        .collect();
    unexpected.sort_unstable();
    if !missing.is_empty() {
        problems.push(format!("missing keys: {}", quoted(&missing)));
    }
    if !unexpected.is_empty() {
        problems.push(format!("unexpected keys: {}", quoted(&unexpected)));
    }
    for (name, entry) in &targets {
        let (Some(src), dst) = (given.get(name.as_str()), entry.tensor()) else {
            continue;
        };
        if src.shape() != dst.shape() {
            problems.push(format!(
                "`{name}` has shape {:?} in the checkpoint but {:?} in the model",
                src.shape(),
                dst.shape()
            ));
        } else if src.dtype() != dst.dtype() {
            problems.push(format!(
                "`{name}` has dtype {:?} in the checkpoint but {:?} in the model",
                src.dtype(),
                dst.dtype()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Checkpoint {
            path: source.to_owned(),
            msg: problems.join("; "),
        });
    }
    // Move everything to the parameters' devices before writing anything, so a
    // failed transfer cannot leave the module half-loaded.
    let mut staged = Vec::with_capacity(targets.len());
    for (name, entry) in &targets {
        let dst = entry.tensor();
        let src = given[name.as_str()].to_device(&dst.device())?;
        staged.push((dst, src));
    }
    let _guard = crate::no_grad();
    for (dst, src) in staged {
        dst.copy_(&src)?;
    }
    Ok(())
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The elements of `t` in row-major order as little-endian bytes (safetensors' layout).
fn le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    fn flat<T: crate::WithDType, const N: usize>(
        t: &Tensor,
        to_le: fn(T) -> [u8; N],
    ) -> Result<Vec<u8>> {
        Ok(t.to_vec::<T>()?.into_iter().flat_map(to_le).collect())
    }
    match t.dtype() {
        DType::F32 => flat(t, f32::to_le_bytes),
        DType::F64 => flat(t, f64::to_le_bytes),
        DType::F16 => flat(t, half::f16::to_le_bytes),
        DType::BF16 => flat(t, half::bf16::to_le_bytes),
        DType::I64 => flat(t, i64::to_le_bytes),
        DType::U8 => t.to_vec::<u8>(),
    }
}

fn st_dtype(dtype: DType) -> StDtype {
    match dtype {
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::I64 => StDtype::I64,
        DType::U8 => StDtype::U8,
    }
}

/// A CPU tensor holding a safetensors entry; Err(reason) for a dtype kiln lacks.
fn from_view(view: &TensorView<'_>) -> std::result::Result<Tensor, String> {
    fn decode<T, const N: usize>(data: &[u8], from_le: fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N)
            .map(|chunk| {
                let mut word = [0u8; N];
                word.copy_from_slice(chunk);
                from_le(word)
            })
            .collect()
    }
    let data = view.data();
    let storage = match view.dtype() {
        StDtype::F32 => CpuStorage::from_vec(decode(data, f32::from_le_bytes)),
        StDtype::F64 => CpuStorage::from_vec(decode(data, f64::from_le_bytes)),
        StDtype::F16 => CpuStorage::from_vec(decode(data, half::f16::from_le_bytes)),
        StDtype::BF16 => CpuStorage::from_vec(decode(data, half::bf16::from_le_bytes)),
        StDtype::I64 => CpuStorage::from_vec(decode(data, i64::from_le_bytes)),
        StDtype::U8 => CpuStorage::from_vec(data.to_vec()),
        other => return Err(format!("has dtype {other:?}, which kiln does not support")),
    };
    let expected = view.shape().iter().product::<usize>();
    if storage.len() != expected {
        return Err(format!(
            "holds {} elements but its shape {:?} needs {expected}",
            storage.len(),
            view.shape()
        ));
    }
    Tensor::from_cpu(storage, view.shape(), &Device::Cpu).map_err(|e| e.to_string())
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over
/// `path`; the temporary file is removed on failure.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |p: &Path| {
        let shown = p.display().to_string();
        move |source| Error::Io {
            path: shown,
            source,
        }
    };
    let file_name = path.file_name().ok_or_else(|| Error::Checkpoint {
        path: path.display().to_string(),
        msg: "the path names no file".into(),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    // Unique per process and per call, so concurrent saves never share a temp file.
    static SAVES: AtomicUsize = AtomicUsize::new(0);
    let serial = SAVES.fetch_add(1, Ordering::Relaxed);
    tmp_name.push(format!(".tmp-{}-{serial}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
