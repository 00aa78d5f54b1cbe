//! Hostile files, built byte by byte: a pickle spelled opcode by opcode
//! ([`Pickle`], opcode names as in Python's `pickletools`) inside a zip archive laid
//! out as `torch.save` lays it out ([`torch_zip`]).

use std::io::Write;
use std::path::PathBuf;

// Pickle opcodes (pickletools' names).
pub const MARK: u8 = b'(';
pub const STOP: u8 = b'.';
pub const TUPLE: u8 = b't';
pub const TUPLE1: u8 = 0x85;
pub const EMPTY_TUPLE: u8 = b')';
pub const EMPTY_LIST: u8 = b']';
pub const APPEND: u8 = b'a';
pub const APPENDS: u8 = b'e';
pub const EMPTY_DICT: u8 = b'}';
pub const SETITEM: u8 = b's';
pub const SETITEMS: u8 = b'u';
pub const REDUCE: u8 = b'R';
pub const BUILD: u8 = b'b';
pub const BINPERSID: u8 = b'Q';
pub const NEWFALSE: u8 = 0x89;
pub const NEWTRUE: u8 = 0x88;
pub const NONE: u8 = b'N';
pub const LONG1: u8 = 0x8a;
pub const BINPUT: u8 = b'q';
pub const BINGET: u8 = b'h';
pub const LONG_BINPUT: u8 = b'r';
pub const LONG_BINGET: u8 = b'j';
pub const STACK_GLOBAL: u8 = 0x93;
pub const SHORT_BINUNICODE: u8 = 0x8c;
pub const NEWOBJ: u8 = 0x81;
pub const INST: u8 = b'i';

/// A pickle, spelled opcode by opcode.
#[derive(Clone)]
pub struct Pickle(pub Vec<u8>);

impl Pickle {
    /// `PROTO version`.
    pub fn proto(version: u8) -> Pickle {
        Pickle(vec![0x80, version])
    }

    pub fn op(mut self, op: u8) -> Pickle {
        self.0.push(op);
        self
    }

    pub fn bytes(mut self, bytes: &[u8]) -> Pickle {
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn repeat(self, n: usize, f: impl Fn(Pickle) -> Pickle) -> Pickle {
        (0..n).fold(self, |p, _| f(p))
    }

    /// `GLOBAL 'module name'`.
    pub fn global(self, module: &str, name: &str) -> Pickle {
        self.op(b'c')
            .bytes(format!("{module}\n{name}\n").as_bytes())
    }

    /// `BINUNICODE s`.
    pub fn str(self, s: &str) -> Pickle {
        self.op(b'X')
            .bytes(&(s.len() as u32).to_le_bytes())
            .bytes(s.as_bytes())
    }

    /// `LONG1` of 8 bytes: any i64.
    pub fn int(self, v: i64) -> Pickle {
        self.op(LONG1).op(8).bytes(&v.to_le_bytes())
    }

    /// `MARK ints... TUPLE`.
    pub fn ints(self, values: &[i64]) -> Pickle {
        values
            .iter()
            .fold(self.op(MARK), |p, &v| p.int(v))
            .op(TUPLE)
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, {})` of `t`.
    pub fn tensor(self, t: &Spec) -> Pickle {
        self.tensor_ending(t, |p| p.op(EMPTY_DICT))
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, <last>)`, the last
    /// arguments (the backward hooks and optional metadata) spelled by `last`.
    pub fn tensor_ending(self, t: &Spec, last: impl FnOnce(Pickle) -> Pickle) -> Pickle {
        let args = self
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(MARK)
            .op(MARK)
            .str("storage")
            .global("torch", t.class)
            .str(t.key)
            .str(t.location)
            .int(t.numel)
            .op(TUPLE)
            .op(BINPERSID)
            .int(t.offset)
            .ints(&t.size)
            .ints(&t.stride)
            .op(NEWFALSE);
        last(args).op(TUPLE).op(REDUCE)
    }

    /// `{"w": tensor(t)}`, as `torch.save` pickles a one-entry state_dict.
    pub fn state_dict(self, t: &Spec) -> Pickle {
        self.op(EMPTY_DICT).str("w").tensor(t).op(SETITEM)
    }

    pub fn stop(self) -> Vec<u8> {
        self.op(STOP).0
    }
}

/// A tensor as `_rebuild_tensor_v2` describes it.
#[derive(Clone)]
pub struct Spec {
    pub class: &'static str,
    pub key: &'static str,
    pub location: &'static str,
    pub numel: i64,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// A 2×2 f32 tensor over storage `0` of 4 elements: a valid state_dict entry.
pub fn spec() -> Spec {
    Spec {
        class: "FloatStorage",
        key: "0",
        location: "cpu",
        numel: 4,
        offset: 0,
        size: vec![2, 2],
        stride: vec![2, 1],
    }
}

/// The 16 bytes of storage `0`: 1.0, 2.0, 3.0, 4.0.
pub fn storage0() -> Vec<u8> {
    [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// The pickle of `{"w": tensor(t)}`.
pub fn state_dict(t: &Spec) -> Vec<u8> {
    Pickle::proto(2).state_dict(t).stop()
}

/// A zip archive of `entries`, stored uncompressed as `torch.save` stores them.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(*name, stored).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// `torch.save`'s layout: `archive/data.pkl`, `archive/byteorder`, one
/// `archive/data/<key>` per storage.
pub fn torch_zip(pkl: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let names: Vec<String> = storages
        .iter()
        .map(|(key, _)| format!("archive/data/{key}"))
        .collect();
    let mut entries = vec![("archive/data.pkl", pkl), ("archive/byteorder", b"little")];
    entries.extend(
        names
            .iter()
            .map(String::as_str)
            .zip(storages.iter().map(|s| s.1)),
    );
    zip(&entries)
}

/// A valid file: `{"w": [[1, 2], [3, 4]]}`.
pub fn valid() -> Vec<u8> {
    torch_zip(&state_dict(&spec()), &[("0", &storage0())])
}

/// `pkl` with a valid storage `0`.
pub fn with_pickle(pkl: Vec<u8>) -> Vec<u8> {
    torch_zip(&pkl, &[("0", &storage0())])
}

/// A state_dict whose tensor is `t`, with a valid storage `0`.
pub fn with_tensor(t: Spec) -> Vec<u8> {
    with_pickle(state_dict(&t))
}

/// Sets the sizes the central directory records for entry `name` (what the reader
/// trusts) to `size`, leaving the data as it is.
pub fn forge_size(mut archive: Vec<u8>, name: &str, size: u32) -> Vec<u8> {
    let header = archive
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x01\x02")
        .map(|(i, _)| i)
        .find(|&i| archive[i + 46..].starts_with(name.as_bytes()))
        .expect("a central directory header for the entry");
    for field in [20, 24] {
        archive[header + field..header + field + 4].copy_from_slice(&size.to_le_bytes());
    }
    archive
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-pth-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}
