//! PyTorch's `torch.save` files (`.pth`, `.pt`, `.bin`): a zip archive holding
//! `<name>/data.pkl`, a pickle of the saved object whose tensors refer to storages
//! by key, and one entry `<name>/data/<key>` per storage with its raw little-endian
//! bytes (entries are stored uncompressed).
//!
//! Reading it: the pickle is run by kiln's restricted unpickler (`pickle.rs`: no
//! imports, no calls, only what a state_dict needs); its nested dicts, lists and
//! tuples are walked into dotted names (`optimizer.state.0.exp_avg`), skipping
//! non-tensor values; every tensor's view is checked against its storage; then
//! each storage a tensor uses is read from its entry, one at a time, straight into
//! the typed buffer (in chunks, never the whole file at once), and every tensor
//! becomes a view of its storage, so views sharing a storage share it in kiln too.
//!
//! Nothing is allocated from a size the file claims before that size is checked
//! against the file: data.pkl's and each storage's bytes against the file's length
//! (all storages together, too, so overlapping zip entries cannot multiply them),
//! and the walk of the pickle by a budget proportional to its size.

use super::pickle::{self, Id, StorageRef, TensorRef, Value};
use crate::backend::CpuStorage;
use crate::shape::Layout;
use crate::{DType, Device, Error, Result, Tensor};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use zip::read::ZipReadOptions;
use zip::{CompressionMethod, ZipArchive};

/// How deep dicts, lists and tuples may nest (a checkpoint nests a handful).
const MAX_DEPTH: usize = 64;

/// The zip local-file-header signature that starts every `torch.save` file.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// How PyTorch's legacy (pre-1.6, or `_use_new_zipfile_serialization=False`)
/// format starts: a pickled magic number.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// True for a file to be read as a `torch.save` archive: a `.pth`, `.pt` or `.bin`
/// name, or content that starts as a zip archive does (safetensors files never do).
pub(super) fn is_torch_file(path: &Path) -> bool {
    let by_name = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["pth", "pt", "bin"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    });
    by_name || leading_bytes(path, ZIP_MAGIC.len()).is_ok_and(|head| head == ZIP_MAGIC)
}

/// Every tensor of the `torch.save` file at `path`, named by its dotted path through
/// the saved dicts, lists and tuples, on `device`. Each storage moves to the device
/// once and its tensors are views of it there.
pub(super) fn load_tensors(path: &Path, device: &Device) -> Result<Vec<(String, Tensor)>> {
    let shown = path.display().to_string();
    let corrupt = |msg: String| Error::Checkpoint {
        path: shown.clone(),
        msg,
    };
    let io = |source| Error::Io {
        path: shown.clone(),
        source,
    };
    let head = leading_bytes(path, LEGACY_MAGIC.len()).map_err(io)?;
    if !head.starts_with(ZIP_MAGIC) {
        return Err(corrupt(not_a_zip(&head)));
    }
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut archive = Archive::open(file, file_len).map_err(&corrupt)?;
    let pkl = archive.data_pkl().map_err(&corrupt)?;
    let pickle = pickle::parse(&pkl).map_err(&corrupt)?;
    let named = Walk::new(&pickle.values, pkl.len())
        .run(pickle.root)
        .map_err(&corrupt)?;
    let layouts = named
        .iter()
        .map(|(name, t)| layout(name, t))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(&corrupt)?;
    let mut bases: HashMap<&str, (&StorageRef, Tensor)> = HashMap::new();
    let mut out = Vec::with_capacity(named.len());
    for ((name, t), layout) in named.iter().zip(layouts) {
        let storage = &t.storage;
        let base = match bases.get(storage.key.as_str()) {
            Some((seen, base)) if *seen == storage => base.clone(),
            Some(_) => {
                return Err(corrupt(format!(
                    "storage `{}` is described twice with different dtypes or sizes",
                    storage.key
                )))
            }
            None => {
                let data = archive.storage(storage).map_err(&corrupt)?;
                let base = Tensor::from_cpu(data, &[storage.numel], device)?;
                bases.insert(&storage.key, (storage, base.clone()));
                base
            }
        };
        out.push((name.clone(), base.with_layout(layout)));
    }
    Ok(out)
}

/// Why a file that does not start as a zip archive is not read.
fn not_a_zip(head: &[u8]) -> String {
    if head == LEGACY_MAGIC {
        "this is PyTorch's legacy format (torch.save before 1.6, or \
         _use_new_zipfile_serialization=False), which kiln does not read: load it in \
         PyTorch and torch.save it again"
            .into()
    } else {
        format!(
            "not a torch.save file: it does not start with a zip header ({} bytes: {head:02x?}); \
             kiln reads the zip format of torch.save (PyTorch 1.6 and later) and safetensors",
            head.len()
        )
    }
}

/// The first bytes of the file (fewer if it is shorter).
fn leading_bytes(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    File::open(path)?.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The zip archive of a `torch.save` file and the prefix of its entries.
struct Archive {
    zip: ZipArchive<BufReader<File>>,
    /// The folder every entry is under (`torch.save` names it after the file).
    prefix: String,
    file_len: u64,
    /// Bytes of storages read so far, which the file must hold.
    storage_bytes: u64,
}

impl Archive {
    fn open(file: File, file_len: u64) -> std::result::Result<Archive, String> {
        let zip = ZipArchive::new(BufReader::new(file))
            .map_err(|e| format!("not a valid zip archive (is it truncated?): {e}"))?;
        let pkls: Vec<String> = zip
            .file_names()
            .filter_map(|name| {
                let name = name.ok()?;
                let prefix = name.strip_suffix("/data.pkl")?;
                (!prefix.contains('/')).then(|| prefix.to_owned())
            })
            .collect();
        let prefix = match pkls.as_slice() {
            [prefix] => prefix.clone(),
            [] => {
                return Err(format!(
                    "the zip archive has no `<name>/data.pkl`, so torch.save did not write \
                     it ({} entries)",
                    zip.len()
                ))
            }
            _ => return Err("the zip archive has more than one `<name>/data.pkl`".into()),
        };
        let mut archive = Archive {
            zip,
            prefix,
            file_len,
            storage_bytes: 0,
        };
        archive.check_byte_order()?;
        Ok(archive)
    }

    /// `byteorder` (absent before PyTorch 1.12, where it was little-endian) must say
    /// `little`: storages are read as little-endian.
    fn check_byte_order(&mut self) -> std::result::Result<(), String> {
        let name = format!("{}/byteorder", self.prefix);
        if self.zip.index_for_name(&name).is_none() {
            return Ok(());
        }
        let order = self.entry_bytes(&name, 16)?;
        match order.as_slice() {
            b"little" => Ok(()),
            other => Err(format!(
                "the storages are {}-endian; kiln reads little-endian files",
                String::from_utf8_lossy(other)
            )),
        }
    }

    /// The bytes of `data.pkl`.
    fn data_pkl(&mut self) -> std::result::Result<Vec<u8>, String> {
        let name = format!("{}/data.pkl", self.prefix);
        self.entry_bytes(&name, self.file_len)
    }

    /// A whole small entry, at most `limit` bytes (checked before reading).
    fn entry_bytes(&mut self, name: &str, limit: u64) -> std::result::Result<Vec<u8>, String> {
        let (index, size) = self.stored_entry(name)?;
        if size > limit {
            return Err(format!("`{name}` claims {size} bytes, more than {limit}"));
        }
        let capacity = usize::try_from(size)
            .map_err(|_| format!("`{name}` claims {size} bytes, more than memory can address"))?;
        let mut reader = self.reader(index)?;
        let mut bytes = Vec::with_capacity(capacity);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read `{name}`: {e}"))?;
        Ok(bytes)
    }

    /// The elements of storage `s`, from its entry `data/<key>`.
    fn storage(&mut self, s: &StorageRef) -> std::result::Result<CpuStorage, String> {
        let name = format!("{}/data/{}", self.prefix, s.key);
        let (index, size) = self.stored_entry(&name)?;
        let bytes = (s.numel as u64).checked_mul(s.dtype.size_in_bytes() as u64);
        if bytes != Some(size) {
            return Err(format!(
                "storage `{}` holds {} elements of {:?}, but its entry `{name}` has {size} bytes",
                s.key, s.numel, s.dtype
            ));
        }
        self.storage_bytes += size;
        if self.storage_bytes > self.file_len {
            return Err(format!(
                "the storages add up to {} bytes, more than the file's {} (overlapping \
                 zip entries?)",
                self.storage_bytes, self.file_len
            ));
        }
        let mut reader = self.reader(index)?;
        read_elements(&mut reader, s.dtype, s.numel)
            .map_err(|e| format!("cannot read `{name}`: {e}"))
    }

    /// The index and size of an uncompressed entry (what torch.save writes).
    fn stored_entry(&self, name: &str) -> std::result::Result<(usize, u64), String> {
        let index = self
            .zip
            .index_for_name(name)
            .ok_or_else(|| format!("the archive has no entry `{name}`"))?;
        let entry = self
            .zip
            .by_index_data(index)
            .map_err(|e| format!("`{name}`: {e}"))?;
        if entry.compression() != CompressionMethod::Stored {
            return Err(format!(
                "`{name}` is compressed ({}); torch.save stores entries uncompressed",
                entry.compression()
            ));
        }
        if entry.size() > self.file_len {
            return Err(format!(
                "`{name}` claims {} bytes, but the file has {}",
                entry.size(),
                self.file_len
            ));
        }
        Ok((index, entry.size()))
    }

    /// A reader of entry `index` that checks its CRC-32 at the end, unless the CRC
    /// is 0: `torch.serialization.set_crc32_options(False)` writes 0.
    fn reader(&mut self, index: usize) -> std::result::Result<impl Read + '_, String> {
        let crc = self
            .zip
            .by_index_data(index)
            .map_err(|e| e.to_string())?
            .crc32();
        let options = ZipReadOptions::new().ignore_crc32(crc == 0);
        self.zip
            .by_index_with_options(index, options)
            .map_err(|e| format!("cannot read entry {index}: {e}"))
    }
}

/// `numel` little-endian elements of `dtype` from `reader`, decoded chunk by chunk
/// into the storage (never the whole entry as bytes first), then an end-of-entry
/// read so the zip reader checks the CRC.
fn read_elements(
    reader: &mut impl Read,
    dtype: DType,
    numel: usize,
) -> std::io::Result<CpuStorage> {
    let storage = match dtype {
        DType::F32 => CpuStorage::from_vec(decode(reader, numel, f32::from_le_bytes)?),
        DType::F64 => CpuStorage::from_vec(decode(reader, numel, f64::from_le_bytes)?),
        DType::F16 => CpuStorage::from_vec(decode(reader, numel, half::f16::from_le_bytes)?),
        DType::BF16 => CpuStorage::from_vec(decode(reader, numel, half::bf16::from_le_bytes)?),
        DType::I64 => CpuStorage::from_vec(decode(reader, numel, i64::from_le_bytes)?),
        DType::U8 => CpuStorage::from_vec(decode(reader, numel, u8::from_le_bytes)?),
    };
    if reader.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the entry is longer than its storage",
        ));
    }
    Ok(storage)
}

fn decode<T, const N: usize>(
    reader: &mut impl Read,
    numel: usize,
    from_le: fn([u8; N]) -> T,
) -> std::io::Result<Vec<T>> {
    const CHUNK: usize = 1 << 16;
    let mut out = Vec::with_capacity(numel);
    let mut chunk = vec![0u8; CHUNK.min(numel * N)];
    while out.len() < numel {
        let len = ((numel - out.len()) * N).min(CHUNK);
        reader.read_exact(&mut chunk[..len])?;
        out.extend(chunk[..len].chunks_exact(N).map(|bytes| {
            let mut word = [0u8; N];
            word.copy_from_slice(bytes);
            from_le(word)
        }));
    }
    Ok(out)
}

/// The layout of tensor `t` named `name`, checked: the view must lie inside its
/// storage (an empty view is made contiguous at 0).
fn layout(name: &str, t: &TensorRef) -> std::result::Result<Layout, String> {
    let described = || {
        format!(
            "`{name}` (offset {}, shape {:?}, strides {:?})",
            t.offset, t.shape, t.strides
        )
    };
    match t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        None => {
            return Err(format!(
                "{} has more elements than can be addressed",
                described()
            ))
        }
        Some(0) => return Ok(Layout::contiguous(&t.shape)),
        Some(_) => {}
    }
    let last = t
        .shape
        .iter()
        .zip(&t.strides)
        .try_fold(t.offset, |end, (&d, &s)| {
            end.checked_add((d - 1).checked_mul(s)?)
        });
    match last {
        Some(last) if last < t.storage.numel => Ok(Layout {
            shape: t.shape.clone(),
            strides: t.strides.clone(),
            offset: t.offset,
        }),
        _ => Err(format!(
            "{} reaches past the end of storage `{}` ({} elements)",
            described(),
            t.storage.key,
            t.storage.numel
        )),
    }
}

/// The walk from the pickle's root to its tensors, naming each by its path.
struct Walk<'p> {
    values: &'p [Value],
    /// Visits and name bytes left. A memo bomb (an object referenced from many
    /// places, each referencing it again: exponentially many paths in a few bytes)
    /// runs out; a real checkpoint, whose pickle spells out roughly each name it
    /// holds, spends about its own size.
    budget: u64,
    out: Vec<(String, &'p TensorRef)>,
}

impl<'p> Walk<'p> {
    fn new(values: &'p [Value], pkl_len: usize) -> Walk<'p> {
        Walk {
            values,
            budget: 4 * pkl_len as u64 + (1 << 16),
            out: Vec::new(),
        }
    }

    /// The tensors under `root`, named, names unique.
    fn run(mut self, root: Id) -> std::result::Result<Vec<(String, &'p TensorRef)>, String> {
        self.visit(root, String::new(), 0)?;
        let mut seen = HashSet::new();
        if let Some((name, _)) = self.out.iter().find(|(name, _)| !seen.insert(name)) {
            return Err(format!(
                "two tensors are named `{name}` (keys such as `a.b` and `a` → `b` join alike)"
            ));
        }
        Ok(self.out)
    }

    fn spend(&mut self, cost: usize) -> std::result::Result<(), String> {
        self.budget = self.budget.checked_sub(cost as u64).ok_or(
            "the pickle refers to its objects far more often than its size allows \
             (a memo bomb?)",
        )?;
        Ok(())
    }

    /// Collects the tensors under `id`, named `name`. Other leaves (epoch numbers,
    /// hyper-parameters, strings) are skipped without building their names.
    fn visit(&mut self, id: Id, name: String, depth: usize) -> std::result::Result<(), String> {
        self.spend(1)?;
        if depth > MAX_DEPTH {
            return Err(format!(
                "`{name}` is nested more than {MAX_DEPTH} dicts, lists or tuples deep"
            ));
        }
        let values = self.values;
        match &values[id] {
            Value::Tensor(t) => self.out.push((name, t)),
            Value::Dict(items) => {
                for &(key, value) in items {
                    self.visit_entry(&name, key, value, depth)?;
                }
            }
            Value::List(items) | Value::Tuple(items) => {
                for (i, &item) in items.iter().enumerate() {
                    self.visit_child(&name, &i.to_string(), item, depth)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_child(
        &mut self,
        name: &str,
        key: &str,
        id: Id,
        depth: usize,
    ) -> std::result::Result<(), String> {
        match self.values[id] {
            Value::Tensor(_) | Value::Dict(_) | Value::List(_) | Value::Tuple(_) => {
                let child = join(name, key);
                self.spend(child.len())?;
                self.visit(id, child, depth + 1)
            }
            _ => self.spend(1),
        }
    }

    /// A dict entry: keys are strings or ints (optimizer state is keyed by
    /// parameter index); another key type is an error only above a tensor.
    fn visit_entry(
        &mut self,
        name: &str,
        key: Id,
        value: Id,
        depth: usize,
    ) -> std::result::Result<(), String> {
        match &self.values[key] {
            Value::Str(s) => self.visit_child(name, s, value, depth),
            Value::Int(i) => self.visit_child(name, &i.to_string(), value, depth),
            other => {
                let found = self.out.len();
                self.visit_child(name, "?", value, depth)?;
                if self.out.len() > found {
                    let dict = match name {
                        "" => "the saved dict".to_owned(),
                        _ => format!("`{name}`"),
                    };
                    return Err(format!(
                        "{dict} has a key of type {} above tensors; keys must be \
                         strings or ints",
                        other.type_name()
                    ));
                }
                Ok(())
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}
