//! The Hugging Face hub's model folder: `config.json` plus the weights as one
//! `model.safetensors` or as shards `model-0000N-of-0000M.safetensors` listed by
//! `model.safetensors.index.json`. Read into named tensors; written back as
//! `config.json` + `model.safetensors`, which `transformers`' `from_pretrained` reads.

use crate::{load_tensors, save_tensors, DType, Device, Error, Result, Tensor};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A model folder's `config.json`, with typed getters whose errors name the key.
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    json: Map<String, Value>,
    path: PathBuf,
}

impl HubConfig {
    /// Reads `<dir>/config.json`.
    pub fn read(dir: &Path) -> Result<HubConfig> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(json)) => Ok(HubConfig { json, path }),
            Ok(_) => Err(config_error(&path, "is not a JSON object".into())),
            Err(e) => Err(config_error(&path, format!("is not valid JSON: {e}"))),
        }
    }

    /// A config made in memory (a model built by kiln), written as `config.json`.
    pub fn from_json(json: Map<String, Value>) -> HubConfig {
        HubConfig {
            json,
            path: PathBuf::from("config.json"),
        }
    }

    /// The JSON object.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// An error about `key` of this config.
    pub fn error(&self, key: &str, msg: &str) -> Error {
        config_error(&self.path, format!("`{key}` {msg}"))
    }

    /// `key` as a string, if present and not null.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(key, "must be a string")),
        }
    }

    /// `key` as a count; `default` when absent or null (Err when absent and no default).
    pub fn usize(&self, key: &str, default: Option<usize>) -> Result<usize> {
        match self.json.get(key) {
            None | Some(Value::Null) => default.ok_or_else(|| self.error(key, "is missing")),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| self.error(key, "must be a non-negative integer")),
        }
    }

    /// `key` as a number; `default` when absent or null.
    pub fn f64(&self, key: &str, default: f64) -> Result<f64> {
        number(self.json.get(key), default).map_err(|()| self.error(key, "must be a number"))
    }

    /// `key` as a boolean; `default` when absent or null.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.error(key, "must be true or false")),
        }
    }

    /// `key` as token ids: a number or a list of numbers (`eos_token_id`).
    pub fn ids(&self, key: &str) -> Result<Vec<u32>> {
        let id = |v: &Value| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| self.error(key, "must be a token id or a list of them"))
        };
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(id).collect(),
            Some(v) => Ok(vec![id(v)?]),
        }
    }

    /// Writes the config to `<dir>/config.json` with `dtype` as the weights' dtype.
    pub fn write(&self, dir: &Path, dtype: DType) -> Result<()> {
        let mut json = self.json.clone();
        json.insert("dtype".into(), Value::String(torch_dtype(dtype).into()));
        let text = serde_json::to_string_pretty(&Value::Object(json))
            .map_err(|e| config_error(&dir.join("config.json"), e.to_string()))?;
        let path = dir.join("config.json");
        std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// `v` as a number, `default` when absent or null, `Err(())` for another type.
pub(crate) fn number(v: Option<&Value>, default: f64) -> std::result::Result<f64, ()> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_f64().ok_or(()),
    }
}

fn config_error(path: &Path, msg: String) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        msg,
    }
}

/// PyTorch's name of `dtype` (`"float32"`, `"bfloat16"`, ...), as config.json has it.
fn torch_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::I64 => "int64",
        DType::U8 => "uint8",
    }
}

/// Every tensor of the folder's weights (one file, or the shards its index lists), on
/// the CPU in the file's dtype. Err naming the path when neither is there.
pub(crate) fn read_weights(dir: &Path) -> Result<Vec<(String, Tensor)>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return load_tensors(&single, &Device::Cpu);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).map_err(|source| Error::Io {
        path: format!("{} (nor {})", index.display(), single.display()),
        source,
    })?;
    let files: BTreeSet<String> = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("weight_map")?
                .as_object()?
                .values()
                .map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| {
            config_error(&index, "needs a `weight_map` of names to file names".into())
        })?;
    let mut tensors = Vec::new();
    for file in files {
        tensors.extend(load_tensors(dir.join(file), &Device::Cpu)?);
    }
    Ok(tensors)
}

/// Writes `tensors` as `<dir>/model.safetensors` (creating `dir`) and `config` as
/// `<dir>/config.json`, the layout `from_pretrained` reads (kiln's and transformers').
pub(crate) fn write_folder(
    dir: &Path,
    config: &HubConfig,
    tensors: &[(String, Tensor)],
    dtype: DType,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    save_tensors(dir.join("model.safetensors"), tensors)?;
    config.write(dir, dtype)
}
