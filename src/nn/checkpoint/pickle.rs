//! A restricted unpickler for the `data.pkl` of a `torch.save` file.
//!
//! A pickle is a program for a small stack machine, and two of its opcodes are
//! dangerous: `GLOBAL` imports any Python name and `REDUCE` calls it, so unpickling
//! an untrusted file runs whatever it names (`os.system`, `builtins.eval`). This
//! machine implements only the opcodes a state_dict needs (protocols 2 to 5, as
//! `torch.save` writes them) and resolves `GLOBAL` against a fixed list of names
//! (`pickle/torch.rs`); the "calls" `REDUCE` can make are kiln's own readings of those
//! names (an empty `OrderedDict`, a tensor's view of a storage), so nothing is
//! imported or executed. Any other name or opcode is an `Err`.
//!
//! Values live in an arena and containers hold indices into it, so a memoized
//! object referenced many times costs no copies, a cycle costs no memory, and
//! dropping the result never recurses. Every opcode adds at most one value and one
//! stack slot, and strings are read from the pickle's own bytes, so memory stays
//! proportional to the pickle's size. Walking the result is bounded by its caller
//! (`pth.rs`: depth and visit budgets).

mod torch;

use std::collections::HashMap;
use torch::{resolve, Global};
pub(super) use torch::{StorageRef, TensorRef};

/// An index into [`Pickle::values`].
pub(super) type Id = usize;

/// A value the machine built.
#[derive(Debug)]
pub(super) enum Value {
    None,
    /// `True` or `False` (only its type is ever needed: `requires_grad`).
    Bool,
    Int(i64),
    Str(String),
    /// A value kept only to be skipped, by its type's name: a float, bytes, an
    /// integer wider than 64 bits.
    Opaque(&'static str),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    /// A dict or an `OrderedDict`, items in insertion order.
    Dict(Vec<(Id, Id)>),
    /// One of the allowed globals, not called (yet).
    Global(Global),
    /// A storage, from a persistent id: the archive entry `data/<key>`.
    Storage(StorageRef),
    /// A view of a storage (`torch._utils._rebuild_tensor_v2`).
    Tensor(TensorRef),
}

impl Value {
    /// The Python type's name, for error messages.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "str",
            Value::Opaque(name) => name,
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "a class or function",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// The values a pickle built, and the one it returned.
pub(super) struct Pickle {
    pub values: Vec<Value>,
    pub root: Id,
}

/// Runs the restricted machine over `data`. Errors name the byte offset and opcode.
pub(super) fn parse(data: &[u8]) -> Result<Pickle, String> {
    Machine {
        data,
        pos: 0,
        values: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

// The opcodes implemented (pickletools' names).
const MARK: u8 = b'(';
const STOP: u8 = b'.';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const LONG1: u8 = 0x8a;
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BINFLOAT: u8 = b'G';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE: u8 = b'X';
const BINUNICODE8: u8 = 0x8d;
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const BINBYTES8: u8 = 0x8e;
const EMPTY_TUPLE: u8 = b')';
const TUPLE: u8 = b't';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const EMPTY_LIST: u8 = b']';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const GLOBAL: u8 = b'c';
const STACK_GLOBAL: u8 = 0x93;
const REDUCE: u8 = b'R';
const BUILD: u8 = b'b';
const BINPERSID: u8 = b'Q';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const MEMOIZE: u8 = 0x94;
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;

/// What a refused opcode is, so its error says what the pickle tried.
fn refused_name(op: u8) -> &'static str {
    match op {
        b'i' => "opcode INST (builds an instance of an imported class)",
        b'o' => "opcode OBJ (builds an instance of an imported class)",
        0x81 => "opcode NEWOBJ (builds an instance of an imported class)",
        0x92 => "opcode NEWOBJ_EX (builds an instance of an imported class)",
        0x82..=0x84 => "opcode EXT1/EXT2/EXT4 (imports from the extension registry)",
        b'P' => "opcode PERSID (a text persistent id)",
        b'I' | b'L' | b'F' | b'S' | b'V' | b'T' | b'U' => "a protocol 0/1 value",
        b'p' | b'g' => "opcode PUT/GET (protocol 0 memo)",
        b'l' | b'd' => "opcode LIST/DICT (protocol 0 containers)",
        b'0' | b'1' | b'2' => "opcode POP/POP_MARK/DUP",
        0x8b => "opcode LONG4",
        0x8f..=0x91 => "a set or frozenset",
        0x96..=0x98 => "an out-of-band buffer",
        _ => "an unknown opcode",
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    values: Vec<Value>,
    stack: Vec<Id>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

impl<'a> Machine<'a> {
    fn run(mut self) -> Result<Pickle, String> {
        match self.take(2) {
            Ok(&[PROTO, version]) if (2..=5).contains(&version) => {}
            Ok(&[PROTO, version]) => {
                return Err(format!(
                    "pickle protocol {version} is not supported (torch.save writes 2; \
                     kiln reads 2 to 5)"
                ))
            }
            _ => {
                return Err(
                    "data.pkl does not start with PROTO 2-5 (protocols 0 and 1, \
                            which torch.save never writes, are not supported)"
                        .into(),
                )
            }
        }
        loop {
            let at = self.pos;
            let op = self.byte().map_err(|_| {
                format!("data.pkl ends at byte {at} without STOP (is it truncated?)")
            })?;
            if op == STOP {
                return self.finish(at);
            }
            self.step(op)
                .map_err(|e| format!("data.pkl, opcode 0x{op:02x} at byte {at}: {e}"))?;
        }
    }

    /// The returned value: the only thing left on the stack.
    fn finish(self, at: usize) -> Result<Pickle, String> {
        match (self.stack.as_slice(), self.marks.is_empty()) {
            (&[root], true) => Ok(Pickle {
                values: self.values,
                root,
            }),
            _ => Err(format!(
                "data.pkl stops at byte {at} with {} values and {} marks on the stack \
                 (a valid pickle leaves one value)",
                self.stack.len(),
                self.marks.len()
            )),
        }
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            MARK => self.marks.push(self.stack.len()),
            BININT => {
                let v = i32::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()));
            }
            BININT1 => {
                let v = self.byte()?;
                self.push(Value::Int(v.into()));
            }
            BININT2 => {
                let v = u16::from_le_bytes(self.array()?);
                self.push(Value::Int(v.into()));
            }
            LONG1 => {
                let n = self.byte()?;
                let v = long(self.take(n.into())?);
                self.push(v);
            }
            NONE => self.push(Value::None),
            NEWTRUE | NEWFALSE => self.push(Value::Bool),
            BINFLOAT => {
                self.take(8)?;
                self.push(Value::Opaque("float"));
            }
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                let len = self.length(op, SHORT_BINUNICODE, BINUNICODE)?;
                let s = std::str::from_utf8(self.take(len)?)
                    .map_err(|e| format!("a string is not UTF-8: {e}"))?;
                self.push(Value::Str(s.to_owned()));
            }
            SHORT_BINBYTES | BINBYTES | BINBYTES8 => {
                let len = self.length(op, SHORT_BINBYTES, BINBYTES)?;
                self.take(len)?;
                self.push(Value::Opaque("bytes"));
            }
            EMPTY_TUPLE => self.push(Value::Tuple(Vec::new())),
            TUPLE => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(items));
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let n = usize::from(op - TUPLE1) + 1;
                let items = self.pop_n(n)?;
                self.push(Value::Tuple(items));
            }
            EMPTY_LIST => self.push(Value::List(Vec::new())),
            APPEND => {
                let item = self.pop()?;
                self.list_top()?.push(item);
            }
            APPENDS => {
                let items = self.pop_mark()?;
                self.list_top()?.extend(items);
            }
            EMPTY_DICT => self.push(Value::Dict(Vec::new())),
            SETITEM => {
                let pair = self.pop_n(2)?;
                self.dict_top()?.push((pair[0], pair[1]));
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of keys and values".into());
                }
                let pairs = items.chunks_exact(2).map(|kv| (kv[0], kv[1]));
                self.dict_top()?.extend(pairs);
            }
            GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                let global = resolve(module, name)?;
                self.push(Value::Global(global));
            }
            STACK_GLOBAL => {
                let pair = self.pop_n(2)?;
                let global = match (&self.values[pair[0]], &self.values[pair[1]]) {
                    (Value::Str(module), Value::Str(name)) => resolve(module, name)?,
                    (m, n) => {
                        return Err(format!(
                            "STACK_GLOBAL needs two strings, got {} and {}",
                            m.type_name(),
                            n.type_name()
                        ))
                    }
                };
                self.push(Value::Global(global));
            }
            REDUCE => {
                let pair = self.pop_n(2)?;
                let result = self.reduce(pair[0], pair[1])?;
                self.stack.push(result);
            }
            BUILD => self.build()?,
            BINPERSID => {
                let pid = self.pop()?;
                let storage = self.persistent_load(pid)?;
                self.push(Value::Storage(storage));
            }
            BINPUT => {
                let i = self.byte()?;
                self.memoize(i.into())?;
            }
            LONG_BINPUT => {
                let i = u32::from_le_bytes(self.array()?);
                self.memoize(i)?;
            }
            MEMOIZE => {
                let i = u32::try_from(self.memo.len()).map_err(|_| "the memo is full")?;
                self.memoize(i)?;
            }
            BINGET | LONG_BINGET => {
                let i = match op {
                    BINGET => self.byte()?.into(),
                    _ => u32::from_le_bytes(self.array()?),
                };
                let id = *self
                    .memo
                    .get(&i)
                    .ok_or_else(|| format!("memo entry {i} was never stored"))?;
                self.stack.push(id);
            }
            // Frames only group opcodes for buffered reading; the data is already in memory.
            FRAME => {
                self.take(8)?;
            }
            PROTO => return Err("PROTO may only start the pickle".into()),
            _ => {
                return Err(format!(
                    "{} is not allowed in a state_dict",
                    refused_name(op)
                ))
            }
        }
        Ok(())
    }

    /// A new value in the arena (not on the stack).
    fn alloc(&mut self, value: Value) -> Id {
        self.values.push(value);
        self.values.len() - 1
    }

    /// A new value on the stack.
    fn push(&mut self, value: Value) {
        let id = self.alloc(value);
        self.stack.push(id);
    }

    /// Pops one value, never below the innermost MARK.
    fn pop(&mut self) -> Result<Id, String> {
        if self.marks.last() == Some(&self.stack.len()) {
            return Err("pops past a MARK".into());
        }
        self.stack.pop().ok_or_else(|| "pops an empty stack".into())
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Id>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err(format!("needs {n} values on the stack above the last MARK"));
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    /// The values pushed since the innermost MARK, which is closed.
    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        let id = *self.stack.last().ok_or("the stack is empty")?;
        Ok(&mut self.values[id])
    }

    fn list_top(&mut self) -> Result<&mut Vec<Id>, String> {
        match self.top()? {
            Value::List(items) => Ok(items),
            other => Err(format!("APPEND(S) to {}, not a list", other.type_name())),
        }
    }

    fn dict_top(&mut self) -> Result<&mut Vec<(Id, Id)>, String> {
        match self.top()? {
            Value::Dict(items) => Ok(items),
            other => Err(format!("SETITEM(S) on {}, not a dict", other.type_name())),
        }
    }

    fn memoize(&mut self, index: u32) -> Result<(), String> {
        let id = *self.stack.last().ok_or("memoizes an empty stack")?;
        self.memo.insert(index, id);
        Ok(())
    }

    /// The length operand of a string or bytes opcode (1, 4 or 8 bytes).
    fn length(&mut self, op: u8, short: u8, long: u8) -> Result<u64, String> {
        Ok(match op {
            _ if op == short => self.byte()?.into(),
            _ if op == long => u32::from_le_bytes(self.array()?).into(),
            _ => u64::from_le_bytes(self.array()?),
        })
    }

    /// The next `n` bytes; an `n` past the end is an error before anything is read.
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let data = self.data;
        let left = self.data.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                self.pos += n;
                Ok(&data[self.pos - n..self.pos])
            }
            _ => Err(format!(
                "an operand of {n} bytes runs past the end of data.pkl ({left} bytes left)"
            )),
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    /// A `\n`-terminated ASCII operand of GLOBAL.
    fn line(&mut self) -> Result<&'a str, String> {
        let data = self.data;
        let rest = &data[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("GLOBAL's name has no end of line")?;
        self.pos += len + 1;
        std::str::from_utf8(&rest[..len]).map_err(|_| "GLOBAL's name is not UTF-8".into())
    }
}

/// A LONG1 operand: a little-endian two's-complement integer of 0 to 255 bytes.
fn long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::Opaque("int wider than 64 bits");
    }
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut word = if negative { [0xff; 8] } else { [0; 8] };
    word[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(word))
}
