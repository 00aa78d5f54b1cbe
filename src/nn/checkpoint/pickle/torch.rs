//! What a `torch.save` pickle may name, and kiln's reading of each name: the
//! allowed globals ([`resolve`]), the calls `REDUCE` may make with them (an empty
//! `OrderedDict`, a tensor's view of a storage, a parameter's data), persistent ids
//! (storages) and `BUILD` (an `OrderedDict`'s attributes, dropped).

use super::{Id, Machine, Value};
use crate::DType;

/// The names a state_dict pickle may use, and what kiln makes of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::nn::checkpoint) enum Global {
    /// `collections.OrderedDict`: called with no arguments, an empty dict.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
    /// backward_hooks[, metadata])`: a tensor.
    RebuildTensor,
    /// `torch._utils._rebuild_parameter(data, requires_grad, hooks)`: `data`.
    RebuildParameter,
    /// `torch._utils._rebuild_parameter_with_state(data, requires_grad, hooks,
    /// state)`: `data` (the Python attributes in `state` are dropped).
    RebuildParameterWithState,
    /// `torch._tensor._rebuild_from_type_v2(func, type, args, state)`: `func(*args)`,
    /// for a tensor that carries Python attributes.
    RebuildFromType,
    /// `torch.Tensor` or `torch.nn.parameter.Parameter`, as `_rebuild_from_type_v2`'s type.
    TensorType,
    /// `torch.FloatStorage` and the like: the element type of a persistent id.
    Storage(DType),
}

/// A storage named by a persistent id `('storage', torch.XStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::nn::checkpoint) struct StorageRef {
    /// The archive entry `<prefix>/data/<key>` holds its bytes.
    pub key: String,
    pub dtype: DType,
    /// Its element count.
    pub numel: usize,
}

/// A tensor: `shape` and `strides` (in elements) from `offset` in a storage.
#[derive(Debug)]
pub(in crate::nn::checkpoint) struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

/// The storage types kiln reads, as `torch.save` names them.
const STORAGES: [(&str, DType); 6] = [
    ("FloatStorage", DType::F32),
    ("DoubleStorage", DType::F64),
    ("HalfStorage", DType::F16),
    ("BFloat16Storage", DType::BF16),
    ("LongStorage", DType::I64),
    ("ByteStorage", DType::U8),
];

/// What `GLOBAL module name` may name. Nothing is imported: a name is only a label
/// that selects one of kiln's readings.
pub(super) fn resolve(module: &str, name: &str) -> Result<Global, String> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch._tensor", "_rebuild_from_type_v2") => Global::RebuildFromType,
        ("torch", "Tensor") | ("torch.nn.parameter", "Parameter") => Global::TensorType,
        ("torch", storage) if storage.ends_with("Storage") => {
            match STORAGES.iter().find(|(n, _)| *n == storage) {
                Some(&(_, dtype)) => Global::Storage(dtype),
                None => {
                    return Err(format!(
                        "a tensor is stored as torch.{storage}, a dtype kiln does not support \
                         (it reads FloatStorage, DoubleStorage, HalfStorage, \
                         BFloat16Storage, LongStorage and ByteStorage: F32, F64, F16, \
                         BF16, I64 and U8); convert it in PyTorch first"
                    ))
                }
            }
        }
        _ => {
            return Err(format!(
                "refuses the global `{module}.{name}`: a state_dict may name only \
                 collections.OrderedDict, torch's tensor and parameter rebuilders and \
                 its storage types (nothing is imported or called). A pickled \
                 nn.Module or custom object cannot be read: save \
                 `model.state_dict()` instead"
            ))
        }
    })
}

impl Machine<'_> {
    /// `callable(*args)` for the allowed globals (see [`Global`]).
    pub(super) fn reduce(&mut self, callable: Id, args: Id) -> Result<Id, String> {
        let Value::Global(global) = self.values[callable] else {
            return Err(format!(
                "REDUCE calls {}, which is not an allowed global",
                self.values[callable].type_name()
            ));
        };
        let Value::Tuple(args) = &self.values[args] else {
            return Err("REDUCE's arguments are not a tuple".into());
        };
        let args = args.clone();
        self.call(global, &args)
    }

    fn call(&mut self, global: Global, args: &[Id]) -> Result<Id, String> {
        match global {
            Global::OrderedDict if args.is_empty() => Ok(self.alloc(Value::Dict(Vec::new()))),
            Global::OrderedDict => Err("OrderedDict is called with arguments".into()),
            Global::RebuildTensor => {
                let tensor = self.rebuild_tensor(args)?;
                Ok(self.alloc(Value::Tensor(tensor)))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => {
                let arity = if global == Global::RebuildParameter {
                    3
                } else {
                    4
                };
                match args {
                    [data, ..] if args.len() == arity => {
                        self.expect_tensor(*data, "a parameter's data")?;
                        Ok(*data)
                    }
                    _ => Err(format!(
                        "a parameter is rebuilt from {} arguments",
                        args.len()
                    )),
                }
            }
            Global::RebuildFromType => match *args {
                [func, cls, inner, _state] => {
                    let func = match self.values[func] {
                        Value::Global(g @ (Global::RebuildTensor | Global::RebuildParameter)) => g,
                        _ => return Err("_rebuild_from_type_v2 of an unknown function".into()),
                    };
                    if !matches!(self.values[cls], Value::Global(Global::TensorType)) {
                        return Err(
                            "_rebuild_from_type_v2 of a type other than torch.Tensor or \
                                    torch.nn.Parameter"
                                .into(),
                        );
                    }
                    let inner = self.tuple(inner, "_rebuild_from_type_v2's arguments")?;
                    self.call(func, &inner)
                }
                _ => Err(format!(
                    "_rebuild_from_type_v2 is called with {} arguments",
                    args.len()
                )),
            },
            Global::TensorType | Global::Storage(_) => Err(
                "REDUCE calls torch.Tensor, torch.nn.Parameter or a storage type, \
                     which a state_dict never does"
                    .into(),
            ),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    fn rebuild_tensor(&self, args: &[Id]) -> Result<TensorRef, String> {
        let [storage, offset, size, stride, requires_grad, hooks] = *args
            .first_chunk::<6>()
            .ok_or_else(|| format!("a tensor is rebuilt from {} arguments", args.len()))?;
        let metadata = &args[6..];
        let storage = match &self.values[storage] {
            Value::Storage(s) => s.clone(),
            other => return Err(format!("a tensor's storage is {}", other.type_name())),
        };
        if !matches!(self.values[requires_grad], Value::Bool) {
            return Err("a tensor's requires_grad is not a bool".into());
        }
        if !self.is_empty_dict(hooks) {
            return Err("a tensor has backward hooks, which a state_dict never saves".into());
        }
        match metadata {
            [] => {}
            [m] if matches!(self.values[*m], Value::None) || self.is_empty_dict(*m) => {}
            [_] => {
                return Err(
                    "a tensor carries metadata (a negated or conjugated view?), \
                            which kiln does not read"
                        .into(),
                )
            }
            _ => return Err(format!("a tensor is rebuilt from {} arguments", args.len())),
        }
        let shape = self.indices(size, "size")?;
        let strides = self.indices(stride, "stride")?;
        if shape.len() != strides.len() {
            return Err(format!(
                "a tensor has {} sizes but {} strides",
                shape.len(),
                strides.len()
            ));
        }
        Ok(TensorRef {
            storage,
            offset: self.index(offset, "storage offset")?,
            shape,
            strides,
        })
    }

    /// A persistent id `('storage', torch.XStorage, key, location, numel)`; the
    /// location (`cpu`, `cuda:0`) is ignored: kiln places tensors where asked.
    pub(super) fn persistent_load(&self, pid: Id) -> Result<StorageRef, String> {
        let fields = self.tuple(pid, "a persistent id")?;
        let values = fields
            .iter()
            .map(|&id| &self.values[id])
            .collect::<Vec<_>>();
        match values.as_slice() {
            [Value::Str(kind), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_), _]
                if kind == "storage" =>
            {
                Ok(StorageRef {
                    key: key.clone(),
                    dtype: *dtype,
                    numel: self.index(fields[4], "storage size")?,
                })
            }
            _ => Err(
                "a persistent id is not ('storage', torch.XStorage, key, location, \
                      size)"
                    .into(),
            ),
        }
    }

    /// BUILD on an `OrderedDict` sets its attributes (a state_dict's `_metadata`,
    /// module versions): dropped. BUILD on anything else would call `__setstate__`.
    pub(super) fn build(&mut self) -> Result<(), String> {
        let _state = self.pop()?;
        let target = *self.stack.last().ok_or("BUILD on an empty stack")?;
        match self.values[target] {
            Value::Dict(_) => Ok(()),
            ref other => Err(format!(
                "BUILD sets the state of {}, which a state_dict never does",
                other.type_name()
            )),
        }
    }

    fn expect_tensor(&self, id: Id, what: &str) -> Result<(), String> {
        match self.values[id] {
            Value::Tensor(_) => Ok(()),
            ref other => Err(format!("{what} is {}, not a tensor", other.type_name())),
        }
    }

    fn is_empty_dict(&self, id: Id) -> bool {
        matches!(&self.values[id], Value::Dict(items) if items.is_empty())
    }

    fn tuple(&self, id: Id, what: &str) -> Result<Vec<Id>, String> {
        match &self.values[id] {
            Value::Tuple(items) => Ok(items.clone()),
            other => Err(format!("{what} is {}, not a tuple", other.type_name())),
        }
    }

    /// A non-negative int, as a size, stride or offset.
    fn index(&self, id: Id, what: &str) -> Result<usize, String> {
        match self.values[id] {
            Value::Int(v) => {
                usize::try_from(v).map_err(|_| format!("a tensor's {what} is negative ({v})"))
            }
            ref other => Err(format!(
                "a tensor's {what} is {}, not an int",
                other.type_name()
            )),
        }
    }

    fn indices(&self, id: Id, what: &str) -> Result<Vec<usize>, String> {
        let items = self.tuple(id, &format!("a tensor's {what}"))?;
        items.iter().map(|&i| self.index(i, what)).collect()
    }
}
