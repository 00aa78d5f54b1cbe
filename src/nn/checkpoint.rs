//! Checkpoints: a module's `state_dict` as a safetensors file with PyTorch's names,
//! so files written by `safetensors.torch.save_file(model.state_dict(), path)` load
//! into the equivalent kiln model and kiln's files load into PyTorch.
//!
//! PyTorch's `torch.save` files (`.pth`, `.pt`, `.bin`) load too, by a restricted
//! reader that never executes anything (`checkpoint/pth.rs`, `checkpoint/pickle.rs`).
//!
//! Loading is strict and atomic: every entry is checked (names, shapes, dtypes) and
//! decoded before the first parameter is written, so an error leaves the module as
//! it was. Saving writes a temporary file next to the target and renames it into
//! place, so a crash never leaves a half-written checkpoint under the target name.
//!
//! Sizes read from a file are untrusted: every conversion between integer types is
//! checked (the lints below keep it so), reads are bounded by the file's real length,
//! and buffers sized by the header are reserved fallibly.
#![deny(
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod pickle;
mod pth;

use super::module::{collect_entries, Module};
use crate::backend::cpu::alloc;
use crate::backend::CpuStorage;
use crate::{DType, Device, Error, Result, Tensor};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes `module`'s state dict to `path` as safetensors. See [`Module::save`].
pub fn save(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    save_tensors(path, &module.state_dict())
}

/// Writes named tensors (from any device, of any dtype) to `path` as a safetensors
/// file that `safetensors.torch.load_file` reads: an optimizer's
/// [`state_dict`](crate::optim::Optimizer::state_dict), [`crate::rng_state`], a
/// module's state dict. The write is atomic: a temporary file beside `path`, synced,
/// then renamed over it, so a crash never leaves a half-written file. Err naming the
/// path for two tensors with one name or an I/O failure.
pub fn save_tensors(path: impl AsRef<Path>, tensors: &[(String, Tensor)]) -> Result<()> {
    let path = path.as_ref();
    let ckpt_err = |msg: String| Error::Checkpoint {
        path: path.display().to_string(),
        msg,
    };
    let state = tensors;
    let mut names = HashSet::new();
    let mut encoded = Vec::with_capacity(state.len());
    for (name, tensor) in state {
        if !names.insert(name.as_str()) {
            return Err(ckpt_err(format!(
                "two tensors are named `{name}`; every tensor needs a unique name"
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

/// Reads the safetensors or `torch.save` state_dict file at `path` into `module`.
/// See [`Module::load`].
pub fn load(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let state = read_file(path)?;
    load_entries(module, &path.display().to_string(), &state)
}

/// Reads every tensor of the safetensors file at `path` (written by
/// [`save_tensors`] or PyTorch) onto `device`, in file order (safetensors orders the
/// entries by dtype and name, not as they were given: look them up by name). The file is checked
/// as [`Module::load`] checks it; Err naming the path for a missing or corrupt
/// file, or an entry of a dtype kiln lacks.
///
/// A `torch.save` file — a `.pth`, `.pt` or `.bin` name, or any zip archive — is
/// read by a restricted unpickler that accepts only what a state_dict needs and never
/// imports or runs anything (anything else, `os.system` included, is an `Err`).
/// Nested dicts, lists and tuples give dotted names in the saved order
/// (`{"model": sd, "optimizer": opt.state_dict(), "epoch": 3}` yields `model.fc.weight`,
/// ..., `optimizer.state.0.exp_avg`, ...; `torch.save(t)` of one tensor gives it the
/// name `""`); non-tensor values are skipped; tensors that
/// are views of one storage stay views of one storage on `device`. Dtypes kiln lacks
/// (bool, int32, ...), PyTorch's legacy non-zip format and pickled objects other than
/// tensors and containers (a whole `nn.Module`) are `Err`s naming them.
pub fn load_tensors(path: impl AsRef<Path>, device: &Device) -> Result<Vec<(String, Tensor)>> {
    if pth::is_torch_file(path.as_ref()) {
        return pth::load_tensors(path.as_ref(), device);
    }
    read_safetensors_file(path.as_ref())?
        .into_iter()
        .map(|(name, t)| Ok((name, t.to_device(device)?)))
        .collect()
}

/// The entries of the file at `path` as CPU tensors, errors naming the path.
fn read_file(path: &Path) -> Result<Vec<(String, Tensor)>> {
    if pth::is_torch_file(path) {
        return pth::load_tensors(path, &Device::Cpu);
    }
    read_safetensors_file(path)
}

/// The entries of the safetensors file at `path` as CPU tensors, errors naming it.
fn read_safetensors_file(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let shown = path.display().to_string();
    read_safetensors(path).map_err(|e| match e {
        ReadError::Io(source) => Error::Io {
            path: shown.clone(),
            source,
        },
        ReadError::Corrupt(msg) => Error::Checkpoint {
            path: shown.clone(),
            msg,
        },
        ReadError::Memory(e) => e,
    })
}

/// Why a checkpoint file could not be read.
enum ReadError {
    Io(std::io::Error),
    Corrupt(String),
    /// An entry larger than the host can hold ([`Error::HostOutOfMemory`]).
    Memory(Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// The largest header safetensors accepts (its `MAX_HEADER_SIZE`).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The entries of the safetensors file at `path`, as CPU tensors in file order.
///
/// The header is read and checked first — its length against the file's, every
/// key once, offsets and sizes consistent (safetensors' own validation), the data
/// exactly filling the rest of the file — so a file that is not a checkpoint (even
/// `/dev/zero`) fails after reading a few bytes. Then each entry's bytes are read
/// and decoded one at a time, so at most one entry's raw bytes are in memory besides
/// the decoded tensors. (Memory-mapping would need `unsafe`, which kiln keeps in
/// `backend/cuda`, and is undefined behaviour if the file is truncated meanwhile.)
fn read_safetensors(path: &Path) -> std::result::Result<Vec<(String, Tensor)>, ReadError> {
    use std::io::{Read, Seek, SeekFrom};
    let corrupt = |msg: String| ReadError::Corrupt(format!("not a valid safetensors file: {msg}"));
    let mut file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut word = [0u8; 8];
    file.read_exact(&mut word).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(format!(
            "{file_len} bytes is too short for the 8-byte header length"
        )),
        _ => ReadError::Io(e),
    })?;
    let header_len = u64::from_le_bytes(word);
    // Devices and pipes report a length of 0; their header length fails here too.
    let after_len = file_len.saturating_sub(8);
    if header_len == 0 || header_len > MAX_HEADER_BYTES || header_len > after_len {
        return Err(corrupt(format!(
            "the header claims {header_len} bytes, but the file has {after_len} after the \
             length (and a header is 1 to {MAX_HEADER_BYTES} bytes)"
        )));
    }
    // At most MAX_HEADER_BYTES and within the file (checked above).
    let header_bytes =
        usize::try_from(header_len).map_err(|_| corrupt("header too long".into()))?;
    let mut header = vec![0u8; header_bytes];
    file.read_exact(&mut header)?;
    let header = std::str::from_utf8(&header)
        .map_err(|e| corrupt(format!("the header is not UTF-8: {e}")))?;
    let keys = header_keys(header).map_err(|e| corrupt(format!("bad header: {e}")))?;
    let mut seen = HashSet::new();
    let twice: Vec<&str> = keys
        .iter()
        .filter(|k| !seen.insert(k.as_str()))
        .map(String::as_str)
        .collect();
    if !twice.is_empty() {
        return Err(corrupt(format!(
            "the header lists {} twice",
            quoted(&twice)
        )));
    }
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_str(header).map_err(|e| corrupt(format!("bad header: {e}")))?;
    let data_start = 8 + header_len;
    let expected_len = u64::try_from(metadata.data_len())
        .ok()
        .and_then(|n| data_start.checked_add(n));
    if expected_len != Some(file_len) {
        return Err(corrupt(format!(
            "the header describes a file of {} bytes, but it has {file_len}",
            metadata.data_len() as u128 + u128::from(data_start)
        )));
    }
    let infos = metadata.tensors();
    let mut state = Vec::with_capacity(infos.len());
    let mut bad = Vec::new();
    for name in metadata.offset_keys() {
        let info = infos[&name];
        let (begin, end) = info.data_offsets;
        // Within the file: the offsets were checked to tile exactly its data.
        let at = u64::try_from(begin).map_err(|_| corrupt(format!("`{name}`: bad offset")))?;
        file.seek(SeekFrom::Start(data_start + at))?;
        let bytes = read_bytes(&mut file, end - begin)?;
        let view = TensorView::new(info.dtype, info.shape.clone(), &bytes)
            .map_err(|e| corrupt(format!("`{name}`: {e}")))?;
        match from_view(&view).map_err(ReadError::Memory)? {
            Ok(tensor) => state.push((name, tensor)),
            Err(why) => bad.push(format!("`{name}` {why}")),
        }
    }
    if !bad.is_empty() {
        return Err(ReadError::Corrupt(format!(
            "unreadable entries: {}",
            bad.join("; ")
        )));
    }
    Ok(state)
}

/// The next `len` bytes of `file`, in a buffer reserved fallibly (a header may
/// validly describe an entry larger than memory, in a sparse file); a file that ends
/// early is corrupt.
fn read_bytes(file: &mut std::fs::File, len: usize) -> std::result::Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let mut bytes = alloc::buffer(len).map_err(ReadError::Memory)?;
    let want = u64::try_from(len).map_err(|_| ReadError::Corrupt("entry too large".into()))?;
    file.take(want).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(ReadError::Corrupt(format!(
            "not a valid safetensors file: an entry of {len} bytes ends after {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The keys of the header's JSON object in file order, repeats included (a JSON
/// parser into a map would keep only the last of two equal keys).
fn header_keys(header: &str) -> serde_json::Result<Vec<String>> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, serde::de::IgnoredAny)) = map.next_entry::<String, _>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_str(header), Keys)
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
        } else if let Err(e) = dst.check_writable("load") {
            problems.push(format!("`{name}` cannot be written in place: {e}"));
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

/// A CPU tensor holding a safetensors entry: `Ok(Err(reason))` for a dtype kiln
/// lacks, `Err` when the host cannot hold the decoded values.
fn from_view(view: &TensorView<'_>) -> Result<std::result::Result<Tensor, String>> {
    fn decode<T: 'static, const N: usize>(
        data: &[u8],
        from_le: fn([u8; N]) -> T,
    ) -> Result<Vec<T>> {
        alloc::collect(data.chunks_exact(N).map(|chunk| {
            let mut word = [0u8; N];
            word.copy_from_slice(chunk);
            from_le(word)
        }))
    }
    let data = view.data();
    let storage = match view.dtype() {
        StDtype::F32 => CpuStorage::from_vec(decode(data, f32::from_le_bytes)?),
        StDtype::F64 => CpuStorage::from_vec(decode(data, f64::from_le_bytes)?),
        StDtype::F16 => CpuStorage::from_vec(decode(data, half::f16::from_le_bytes)?),
        StDtype::BF16 => CpuStorage::from_vec(decode(data, half::bf16::from_le_bytes)?),
        StDtype::I64 => CpuStorage::from_vec(decode(data, i64::from_le_bytes)?),
        StDtype::U8 => CpuStorage::from_vec(alloc::copied(data)?),
        other => {
            return Ok(Err(format!(
                "has dtype {other:?}, which kiln does not support"
            )))
        }
    };
    let expected = view.shape().iter().product::<usize>();
    if storage.len() != expected {
        return Ok(Err(format!(
            "holds {} elements but its shape {:?} needs {expected}",
            storage.len(),
            view.shape()
        )));
    }
    Ok(Tensor::from_cpu(storage, view.shape(), &Device::Cpu).map_err(|e| e.to_string()))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over
/// `path`; the temporary file is removed on failure.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // Errors name the user's path: the temporary file is an implementation detail.
    let io_err = |source| Error::Io {
        path: path.display().to_string(),
        source,
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
        let mut file = std::fs::File::create(&tmp).map_err(io_err)?;
        file.write_all(bytes).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
