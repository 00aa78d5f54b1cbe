//! Hostile `torch.save` files: every one is an `Err` with a clear message from
//! `kiln::load_tensors` and `Module::load` (which then leaves the module unchanged),
//! none executes anything and none panics.
//!
//! Most files are built byte by byte (`builder.rs`): a pickle spelled opcode by opcode
//! inside a zip archive laid out as `torch.save` lays it out; each case changes one
//! thing of a valid file ([`valid`], which loads). The rest were made by PyTorch itself
//! (scripts/golden/pth.py: a pickled module, an object whose reduction is
//! `os.system`, dtypes kiln lacks, the legacy format, a deflated and a TorchScript
//! archive).
//!
//! Allocation: the size bombs claim terabytes (storages of 2^40 elements, sizes near
//! 2^62). A reader that allocated from a claim before checking it against the file
//! would abort the process here, so these cases passing shows that it does not.

mod builder;

use builder::*;
use kiln::nn::{Linear, Module};
use kiln::{Device, Error};

/// Checks every case: an `Err` from `load_tensors` whose message contains the
/// expected words, and from `Module::load`, which leaves the module unchanged.
/// Returns the cases that failed, with what happened.
fn refusals(cases: &[(&str, Vec<u8>, &str)]) -> Vec<String> {
    let net = Linear::new(2, 2, &Device::Cpu).unwrap();
    let before = net.weight.tensor().to_vec::<f32>().unwrap();
    let mut failed = Vec::new();
    for (name, bytes, expected) in cases {
        let path = scratch(&format!("{name}.pth"));
        std::fs::write(&path, bytes).unwrap();
        match kiln::load_tensors(&path, &Device::Cpu) {
            Err(Error::Checkpoint { msg, .. }) if msg.contains(expected) => {}
            Err(e) => failed.push(format!("{name}: wanted `{expected}`, got: {e}")),
            Ok(t) => failed.push(format!("{name}: loaded {} tensors", t.len())),
        }
        if net.load(&path).is_ok() {
            failed.push(format!("{name}: Module::load succeeded"));
        }
        std::fs::remove_file(&path).unwrap();
    }
    assert_eq!(net.weight.tensor().to_vec::<f32>().unwrap(), before);
    failed
}

fn assert_refused(cases: Vec<(&str, Vec<u8>, &str)>) {
    let failed = refusals(&cases);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A file PyTorch made (scripts/golden/pth.py).
fn torch_made(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/pth/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_valid_baseline_loads() {
    let path = scratch("valid.pth");
    std::fs::write(&path, valid()).unwrap();
    let loaded = kiln::load_tensors(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].0, "w");
    assert_eq!(loaded[0].1.shape(), &[2, 2]);
    assert_eq!(loaded[0].1.to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0, 4.0]);
    // A transposed view saved from a GPU: the location does not matter.
    let t = Spec {
        stride: vec![1, 2],
        location: "cuda:0",
        ..spec()
    };
    std::fs::write(&path, with_tensor(t)).unwrap();
    let loaded = kiln::load_tensors(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded[0].1.to_vec::<f32>().unwrap(), [1.0, 3.0, 2.0, 4.0]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn code_execution_and_unknown_callables_are_refused() {
    let marker = std::path::Path::new("/tmp/kiln-pth-executed");
    let _ = std::fs::remove_file(marker);
    let call = |module: &str, name: &str| {
        with_pickle(
            Pickle::proto(2)
                .global(module, name)
                .str("touch /tmp/kiln-pth-executed")
                .op(TUPLE1)
                .op(REDUCE)
                .stop(),
        )
    };
    assert_refused(vec![
        (
            "os_system",
            call("os", "system"),
            "refuses the global `os.system`",
        ),
        ("posix_system", call("posix", "system"), "`posix.system`"),
        ("builtins_eval", call("builtins", "eval"), "`builtins.eval`"),
        (
            "builtin_exec",
            call("__builtin__", "exec"),
            "`__builtin__.exec`",
        ),
        (
            "stack_global_popen",
            with_pickle(
                Pickle::proto(4)
                    .op(SHORT_BINUNICODE)
                    .bytes(b"\x0asubprocess")
                    .op(SHORT_BINUNICODE)
                    .bytes(b"\x05Popen")
                    .op(STACK_GLOBAL)
                    .op(EMPTY_TUPLE)
                    .op(REDUCE)
                    .stop(),
            ),
            "`subprocess.Popen`",
        ),
        (
            "reduce_of_a_storage_type",
            with_pickle(
                Pickle::proto(2)
                    .global("torch", "FloatStorage")
                    .op(EMPTY_TUPLE)
                    .op(REDUCE)
                    .stop(),
            ),
            "REDUCE calls torch.Tensor, torch.nn.Parameter or a storage type",
        ),
        (
            "reduce_of_a_string",
            with_pickle(
                Pickle::proto(2)
                    .str("os.system")
                    .op(EMPTY_TUPLE)
                    .op(REDUCE)
                    .stop(),
            ),
            "REDUCE calls str",
        ),
        (
            "ordered_dict_with_arguments",
            with_pickle(
                Pickle::proto(2)
                    .global("collections", "OrderedDict")
                    .str("x")
                    .op(TUPLE1)
                    .op(REDUCE)
                    .stop(),
            ),
            "OrderedDict is called with arguments",
        ),
        (
            "newobj",
            with_pickle(
                Pickle::proto(2)
                    .global("collections", "OrderedDict")
                    .op(EMPTY_TUPLE)
                    .op(NEWOBJ)
                    .stop(),
            ),
            "NEWOBJ",
        ),
        (
            "inst",
            with_pickle(
                Pickle::proto(2)
                    .op(MARK)
                    .op(INST)
                    .bytes(b"os\nsystem\n")
                    .stop(),
            ),
            "INST",
        ),
        (
            "build_on_a_tensor",
            with_pickle(
                Pickle::proto(2)
                    .tensor(&spec())
                    .op(EMPTY_DICT)
                    .op(BUILD)
                    .stop(),
            ),
            "BUILD sets the state of a tensor",
        ),
        (
            "torch_module",
            torch_made("hostile_module.pt"),
            "`torch.nn.modules.linear.Linear`",
        ),
        (
            "torch_system",
            torch_made("hostile_system.pt"),
            "`posix.system`",
        ),
        (
            "torchscript",
            torch_made("hostile_jit.pt"),
            "`__torch__.torch.nn.modules.linear.Linear`",
        ),
    ]);
    assert!(!marker.exists(), "a hostile file ran a command");
}

#[test]
fn malformed_pickles_are_refused() {
    let mut long_string = Pickle::proto(2).op(b'X').bytes(&u32::MAX.to_le_bytes()).0;
    long_string.extend_from_slice(b"abc");
    let mut longer_string = Pickle::proto(4)
        .op(0x8d)
        .bytes(&(1u64 << 62).to_le_bytes())
        .0;
    longer_string.extend_from_slice(b"abc");
    assert_refused(vec![
        (
            "protocol_6",
            with_pickle(Pickle::proto(6).op(EMPTY_DICT).stop()),
            "pickle protocol 6",
        ),
        (
            "protocol_0",
            with_pickle(b"(dp0\n.".to_vec()),
            "does not start with PROTO 2-5",
        ),
        (
            "unknown_opcode",
            with_pickle(Pickle::proto(2).op(0xff).stop()),
            "an unknown opcode",
        ),
        (
            "no_stop",
            with_pickle(Pickle::proto(2).op(EMPTY_DICT).0),
            "without STOP",
        ),
        (
            "string_past_the_end",
            with_pickle(long_string),
            "runs past the end of data.pkl",
        ),
        (
            "huge_string_length",
            with_pickle(longer_string),
            "runs past the end of data.pkl",
        ),
        (
            "memo_never_stored",
            with_pickle(Pickle::proto(2).op(BINGET).op(7).stop()),
            "memo entry 7 was never stored",
        ),
        (
            "stack_underflow",
            with_pickle(Pickle::proto(2).op(APPEND).stop()),
            "pops an empty stack",
        ),
        (
            "pop_past_a_mark",
            with_pickle(Pickle::proto(2).op(EMPTY_LIST).op(MARK).op(APPEND).stop()),
            "pops past a MARK",
        ),
        (
            "two_values_left",
            with_pickle(Pickle::proto(2).op(EMPTY_DICT).op(EMPTY_DICT).stop()),
            "with 2 values and 0 marks",
        ),
        (
            "bad_persistent_id",
            with_pickle(
                Pickle::proto(2)
                    .str("storage")
                    .op(TUPLE1)
                    .op(BINPERSID)
                    .stop(),
            ),
            "a persistent id is not ('storage'",
        ),
        (
            "tensor_with_hooks",
            with_pickle(
                Pickle::proto(2)
                    .tensor_ending(&spec(), |p| p.op(EMPTY_DICT).str("h").str("h").op(SETITEM))
                    .stop(),
            ),
            "backward hooks",
        ),
        (
            "tensor_with_metadata",
            with_pickle(
                Pickle::proto(2)
                    .tensor_ending(&spec(), |p| {
                        p.op(EMPTY_DICT)
                            .op(EMPTY_DICT)
                            .str("neg")
                            .op(NEWTRUE)
                            .op(SETITEM)
                    })
                    .stop(),
            ),
            "carries metadata",
        ),
        (
            "tensor_with_eight_arguments",
            with_pickle(
                Pickle::proto(2)
                    .tensor_ending(&spec(), |p| p.op(EMPTY_DICT).op(NONE).op(NONE))
                    .stop(),
            ),
            "rebuilt from 8 arguments",
        ),
    ]);
}

#[test]
fn recursion_and_memo_bombs_are_refused() {
    const DEEP: usize = 100_000;
    // [[[[...]]]]: 100k lists, each appended into the one below it.
    let nested_lists = Pickle::proto(2)
        .repeat(DEEP, |p| p.op(EMPTY_LIST))
        .repeat(DEEP - 1, |p| p.op(APPEND))
        .stop();
    // {"a": {"a": {...}}}
    let nested_dicts = Pickle::proto(2)
        .repeat(DEEP, |p| p.op(EMPTY_DICT).str("a"))
        .op(EMPTY_DICT)
        .repeat(DEEP, |p| p.op(SETITEM))
        .stop();
    // A list that contains itself.
    let cycle = Pickle::proto(2)
        .op(EMPTY_LIST)
        .op(BINPUT)
        .op(0)
        .op(BINGET)
        .op(0)
        .op(APPEND)
        .stop();
    // [tensor, l1, l2, l3] where l1 is 1000 references to the tensor, l2 1000
    // references to l1, l3 to l2: 10^9 paths to the tensor in ~15 kB.
    let memo_bomb = (1..=3u32)
        .fold(
            Pickle::proto(2)
                .op(EMPTY_LIST)
                .op(MARK)
                .tensor(&spec())
                .op(LONG_BINPUT)
                .bytes(&0u32.to_le_bytes()),
            |p, level| {
                p.op(EMPTY_LIST)
                    .op(MARK)
                    .repeat(1000, |p| {
                        p.op(LONG_BINGET).bytes(&(level - 1).to_le_bytes())
                    })
                    .op(APPENDS)
                    .op(LONG_BINPUT)
                    .bytes(&level.to_le_bytes())
            },
        )
        .op(APPENDS)
        .stop();
    assert_refused(vec![
        (
            "nested_lists",
            with_pickle(nested_lists),
            "nested more than 64",
        ),
        (
            "nested_dicts",
            with_pickle(nested_dicts),
            "nested more than 64",
        ),
        ("cycle", with_pickle(cycle), "nested more than 64"),
        ("memo_bomb", with_pickle(memo_bomb), "a memo bomb?"),
    ]);
}

#[test]
fn sizes_strides_and_offsets_past_the_storage_are_refused() {
    let t = spec;
    assert_refused(vec![
        (
            "storage_past_the_file",
            with_tensor(Spec {
                numel: 1 << 40,
                size: vec![1 << 20, 1 << 20],
                stride: vec![1 << 20, 1],
                ..t()
            }),
            "holds 1099511627776 elements of F32, but its entry `archive/data/0` has 16 bytes",
        ),
        (
            "entry_longer_than_its_storage",
            torch_zip(&state_dict(&t()), &[("0", &[0u8; 20])]),
            "holds 4 elements of F32, but its entry `archive/data/0` has 20 bytes",
        ),
        (
            "entry_size_past_the_file",
            forge_size(
                torch_zip(
                    &state_dict(&Spec {
                        numel: 1 << 29,
                        ..t()
                    }),
                    &[("0", &storage0())],
                ),
                "archive/data/0",
                1 << 31,
            ),
            "claims 2147483648 bytes, but the file has",
        ),
        (
            "negative_size",
            with_tensor(Spec {
                size: vec![-1, 4],
                ..t()
            }),
            "a tensor's size is negative (-1)",
        ),
        (
            "negative_stride",
            with_tensor(Spec {
                stride: vec![2, -1],
                ..t()
            }),
            "a tensor's stride is negative (-1)",
        ),
        (
            "negative_offset",
            with_tensor(Spec { offset: -8, ..t() }),
            "a tensor's storage offset is negative (-8)",
        ),
        (
            "huge_sizes",
            with_tensor(Spec {
                size: vec![1 << 62, 1 << 62],
                ..t()
            }),
            "has more elements than can be addressed",
        ),
        (
            "size_past_the_storage",
            with_tensor(Spec {
                size: vec![1 << 40, 2],
                ..t()
            }),
            "reaches past the end of storage `0` (4 elements)",
        ),
        (
            "huge_stride",
            with_tensor(Spec {
                stride: vec![i64::MAX, 1],
                ..t()
            }),
            "reaches past the end of storage `0`",
        ),
        (
            "offset_past_the_storage",
            with_tensor(Spec { offset: 3, ..t() }),
            "`w` (offset 3, shape [2, 2], strides [2, 1]) reaches past the end",
        ),
        (
            "sizes_and_strides_disagree",
            with_tensor(Spec {
                stride: vec![1],
                ..t()
            }),
            "2 sizes but 1 strides",
        ),
        (
            "one_storage_two_dtypes",
            with_pickle(
                Pickle::proto(2)
                    .op(EMPTY_DICT)
                    .op(MARK)
                    .str("a")
                    .tensor(&t())
                    .str("b")
                    .tensor(&Spec {
                        class: "LongStorage",
                        numel: 2,
                        size: vec![2],
                        stride: vec![1],
                        ..t()
                    })
                    .op(SETITEMS)
                    .stop(),
            ),
            "storage `0` is described twice",
        ),
        (
            "missing_storage_entry",
            with_tensor(Spec { key: "5", ..t() }),
            "the archive has no entry `archive/data/5`",
        ),
        (
            "duplicate_names",
            with_pickle(
                Pickle::proto(2)
                    .op(EMPTY_DICT)
                    .op(MARK)
                    .str("a.w")
                    .tensor(&t())
                    .str("a")
                    .state_dict(&t())
                    .op(SETITEMS)
                    .stop(),
            ),
            "two tensors are named `a.w`",
        ),
        (
            "tuple_key",
            with_pickle(
                Pickle::proto(2)
                    .op(EMPTY_DICT)
                    .op(EMPTY_TUPLE)
                    .tensor(&t())
                    .op(SETITEM)
                    .stop(),
            ),
            "has a key of type tuple above tensors",
        ),
    ]);
}

#[test]
fn unsupported_dtypes_and_formats_are_refused() {
    let bool_storage = with_tensor(Spec {
        class: "BoolStorage",
        ..spec()
    });
    let valid = valid();
    // One bit of the storage's data flipped: the CRC-32 catches it.
    let mut corrupted = valid.clone();
    let at = corrupted.windows(16).position(|w| w == storage0()).unwrap();
    corrupted[at] ^= 1;
    assert_refused(vec![
        (
            "bool_storage",
            bool_storage,
            "stored as torch.BoolStorage, a dtype kiln does not support",
        ),
        (
            "torch_bool",
            torch_made("hostile_bool.pt"),
            "torch.BoolStorage",
        ),
        (
            "torch_int32",
            torch_made("hostile_int32.pt"),
            "torch.IntStorage",
        ),
        (
            "legacy",
            torch_made("hostile_legacy.pth"),
            "PyTorch's legacy format",
        ),
        (
            "deflated",
            torch_made("hostile_deflated.pth"),
            "`archive/byteorder` is compressed (Deflated)",
        ),
        ("empty_file", Vec::new(), "not a torch.save file"),
        ("text", b"hello, world".to_vec(), "not a torch.save file"),
        (
            "truncated_to_10_bytes",
            valid[..10].to_vec(),
            "not a valid zip archive",
        ),
        (
            "truncated_in_half",
            valid[..valid.len() / 2].to_vec(),
            "not a valid zip archive",
        ),
        ("corrupted_storage", corrupted, "Invalid checksum"),
        (
            "no_data_pkl",
            zip(&[("archive/data/0", &storage0())]),
            "has no `<name>/data.pkl`",
        ),
        (
            "two_data_pkls",
            zip(&[
                ("a/data.pkl", &state_dict(&spec())),
                ("b/data.pkl", &state_dict(&spec())),
            ]),
            "more than one `<name>/data.pkl`",
        ),
        (
            "big_endian",
            zip(&[
                ("archive/data.pkl", &state_dict(&spec())),
                ("archive/byteorder", b"big"),
                ("archive/data/0", &storage0()),
            ]),
            "the storages are big-endian",
        ),
    ]);
}

/// Every prefix of a real file is an `Err`; the file with any one byte flipped is an
/// `Err` or, where the byte is in a part nobody reads, a load; never a panic.
#[test]
fn truncations_and_flipped_bytes_never_panic() {
    let file = format!("{}/tests/data/pth/dtypes.pt", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&file).unwrap();
    let path = scratch("mutated.pt");
    for cut in (0..bytes.len()).step_by(41) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(
            kiln::load_tensors(&path, &Device::Cpu).is_err(),
            "cut at {cut}"
        );
    }
    for at in (0..bytes.len()).step_by(13) {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let _ = kiln::load_tensors(&path, &Device::Cpu);
    }
    std::fs::remove_file(&path).unwrap();
}
