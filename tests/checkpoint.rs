//! Checkpoints: save/load round trips, strict and atomic loading, corrupt files, and
//! a state_dict saved by PyTorch (scripts/golden/state_dict.py) loading into the
//! equivalent kiln model with the same outputs.

mod common;

use kiln::nn::{self, BatchNorm1d, Forward, Linear, Module};
use kiln::{DType, Device, Error, Tensor};
use std::path::PathBuf;

/// A fresh scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("checkpoint-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[derive(nn::Module)]
struct Head {
    fc: Linear,
}

/// The kiln twin of scripts/golden/state_dict.py's `Net`.
#[derive(nn::Module)]
struct Net {
    body: nn::Sequential,
    heads: Vec<Head>,
}

impl Net {
    fn new(dev: &Device) -> kiln::Result<Net> {
        Ok(Net {
            body: nn::Sequential::new()
                .add(Linear::new(5, 7, dev)?)
                .add(BatchNorm1d::new(7, dev)?)
                .add(nn::ReLU),
            heads: vec![
                Head {
                    fc: Linear::new(7, 3, dev)?,
                },
                Head {
                    fc: Linear::new(7, 3, dev)?,
                },
            ],
        })
    }
}

impl Forward for Net {
    fn forward(&self, x: &Tensor) -> kiln::Result<Tensor> {
        let h = self.body.forward(x)?;
        self.heads[0]
            .fc
            .forward(&h)?
            .sub(&self.heads[1].fc.forward(&h)?.mul_scalar(2.0)?)
    }
}

/// Every state_dict entry as (name, shape, dtype, values as f64).
fn snapshot(m: &dyn Module) -> Vec<(String, Vec<usize>, DType, Vec<f64>)> {
    m.state_dict()
        .into_iter()
        .map(|(name, t)| {
            let values = t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            (name, t.shape().to_vec(), t.dtype(), values)
        })
        .collect()
}

#[track_caller]
fn expect_checkpoint_err(result: kiln::Result<()>, needles: &[&str]) {
    match result {
        Err(Error::Checkpoint { msg, .. }) => {
            for needle in needles {
                assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
            }
        }
        other => panic!("expected Error::Checkpoint, got {other:?}"),
    }
}

common::device_test! {
    fn pytorch_state_dict_loads_and_gives_pytorch_outputs(dev) {
    kiln::manual_seed(3);
    let net = Net::new(dev).unwrap();
    net.load(data_file("state_dict_torch.safetensors")).unwrap();
    let bn_steps = net
        .state_dict()
        .into_iter()
        .find(|(n, _)| n == "body.1.num_batches_tracked");
    let (_, steps) = bn_steps.expect("num_batches_tracked is in the state_dict");
    assert_eq!(steps.dtype(), DType::I64);
    assert_eq!(steps.item::<i64>().unwrap(), 3);
    net.eval();
    let golden = common::Golden::load("state_dict");
    let out = net.forward(&golden.on("net.x", dev)).unwrap();
    common::assert_close(&out, &golden.get("net.out"), dev, 1e-5, 1e-5);
    }
}

#[test]
fn names_match_pytorch_file_exactly() {
    let bytes = std::fs::read(data_file("state_dict_torch.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut torch_names: Vec<&str> = file.names();
    torch_names.sort_unstable();
    let net = Net::new(&Device::Cpu).unwrap();
    let mut ours: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
    ours.sort_unstable();
    assert_eq!(ours, torch_names);
}

#[test]
fn save_then_load_round_trips_every_dtype() {
    #[derive(nn::Module)]
    struct Mixed {
        half: nn::Parameter,
        brain: nn::Parameter,
        double: nn::Parameter,
        count: nn::Buffer,
        mask: nn::Buffer,
        lin: Linear,
    }
    let dev = Device::Cpu;
    let make = |seed: u64| {
        kiln::manual_seed(seed);
        let p = |dtype| nn::Parameter::new(Tensor::randn(&[2, 3], dtype, &dev).unwrap()).unwrap();
        Mixed {
            half: p(DType::F16),
            brain: p(DType::BF16),
            double: p(DType::F64),
            count: nn::Buffer::new(Tensor::from_vec(vec![seed as i64, -5], &[2], &dev).unwrap()),
            mask: nn::Buffer::new(Tensor::from_vec(vec![seed as u8, 255], &[2], &dev).unwrap()),
            lin: Linear::new(4, 3, &dev).unwrap(),
        }
    };
    let dir = scratch("round_trip");
    let path = dir.join("mixed.safetensors");
    let a = make(1);
    a.save(&path).unwrap();
    let b = make(2);
    assert_ne!(snapshot(&a), snapshot(&b));
    b.load(&path).unwrap();
    assert_eq!(snapshot(&a), snapshot(&b));
    // Loading writes into the existing parameters: they stay parameters, with grad.
    assert!(b
        .parameters()
        .iter()
        .all(|p| p.is_parameter() && p.requires_grad_flag()));
    // Only the final file is left behind.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["mixed.safetensors"]);
    // Saving again over an existing file replaces it. (Compared with the saved model
    // itself: a second `make(5)` could differ, as other tests draw from the global
    // generator between its seeding and its draws.)
    let c = make(5);
    c.save(&path).unwrap();
    b.load(&path).unwrap();
    assert_eq!(snapshot(&b), snapshot(&c));
}

#[test]
fn kiln_file_is_a_standard_safetensors_file() {
    let net = Net::new(&Device::Cpu).unwrap();
    let dir = scratch("standard");
    let path = dir.join("net.safetensors");
    net.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    assert_eq!(format.as_deref(), Some("pt"));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let w = file.tensor("heads.1.fc.weight").unwrap();
    assert_eq!(w.shape(), &[3, 7]);
    assert_eq!(w.dtype(), safetensors::Dtype::F32);
    let want = net.heads[1].fc.weight.to_vec::<f32>().unwrap();
    let got: Vec<f32> = w
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, want);
}

/// Builds a safetensors file from (name, dtype, shape, bytes).
fn write_raw(path: &std::path::Path, entries: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<_> = entries
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn load_rejects_mismatches_and_changes_nothing() {
    let dev = Device::Cpu;
    let dir = scratch("mismatch");
    kiln::manual_seed(11);
    let target = Net::new(&dev).unwrap();
    let before = snapshot(&target);
    let good = dir.join("good.safetensors");
    Net::new(&dev).unwrap().save(&good).unwrap();
    let state = Net::new(&dev).unwrap().state_dict();

    // Missing: a checkpoint without one head.
    let without: Vec<_> = state
        .iter()
        .filter(|(n, _)| !n.starts_with("heads.1."))
        .cloned()
        .collect();
    expect_checkpoint_err(
        target.load_state_dict(&without),
        &["missing keys", "`heads.1.fc.weight`", "`heads.1.fc.bias`"],
    );
    // Unexpected: an extra key (e.g. from another architecture).
    let mut extra = state.clone();
    extra.push((
        "body.9.weight".into(),
        Tensor::ones(&[2], DType::F32, &dev).unwrap(),
    ));
    expect_checkpoint_err(
        target.load_state_dict(&extra),
        &["unexpected keys", "`body.9.weight`"],
    );
    // Mis-shaped, and wrong dtype (the checkpoint must match, not be converted).
    let mut reshaped = state.clone();
    reshaped[0].1 = Tensor::ones(&[5, 7], DType::F32, &dev).unwrap();
    let idx = reshaped
        .iter()
        .position(|(n, _)| n == "body.1.num_batches_tracked")
        .unwrap();
    reshaped[idx].1 = Tensor::ones(&[], DType::F32, &dev).unwrap();
    expect_checkpoint_err(
        target.load_state_dict(&reshaped),
        &[
            "`body.0.weight` has shape [5, 7]",
            "[7, 5] in the model",
            "`body.1.num_batches_tracked` has dtype F32",
        ],
    );
    // The same through files, with the path in the error.
    let path = dir.join("partial.safetensors");
    let subset = Head {
        fc: Linear::new(7, 3, &dev).unwrap(),
    };
    subset.save(&path).unwrap();
    match target.load(&path) {
        Err(Error::Checkpoint { path: p, msg }) => {
            assert!(p.ends_with("partial.safetensors"));
            assert!(
                msg.contains("`body.0.weight`")
                    && msg.contains("unexpected keys: `fc.bias`, `fc.weight`")
            );
        }
        other => panic!("expected Error::Checkpoint, got {other:?}"),
    }
    // A dtype kiln does not have is named too.
    let odd = dir.join("odd.safetensors");
    write_raw(
        &odd,
        &[("body.0.bias", safetensors::Dtype::I32, vec![7], vec![0; 28])],
    );
    expect_checkpoint_err(target.load(&odd), &["`body.0.bias`", "I32"]);
    assert_eq!(
        snapshot(&target),
        before,
        "a failed load must change nothing"
    );
    // And the good file still loads.
    target.load(&good).unwrap();
    assert_ne!(snapshot(&target), before);
}

#[test]
fn corrupt_or_missing_files_are_errors_not_panics() {
    let dev = Device::Cpu;
    let dir = scratch("corrupt");
    let net = Net::new(&dev).unwrap();
    let before = snapshot(&net);
    let good = dir.join("good.safetensors");
    Net::new(&dev).unwrap().save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", vec![1, 2, 3]),
        (
            "garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        (
            "huge_header",
            u64::MAX.to_le_bytes().into_iter().chain(*b"{}").collect(),
        ),
        ("truncated_data", bytes[..bytes.len() - 10].to_vec()),
        ("truncated_header", bytes[..8 + header_len / 2].to_vec()),
    ];
    let mut flipped = bytes.clone();
    flipped[8] = b'['; // the JSON header no longer parses as an object
    cases.push(("bad_json", flipped));
    for (name, contents) in cases {
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, contents).unwrap();
        expect_checkpoint_err(net.load(&path), &["not a valid safetensors file"]);
    }
    match net.load(dir.join("does-not-exist.safetensors")) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("does-not-exist.safetensors")),
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert_eq!(snapshot(&net), before);
}

#[test]
fn save_into_missing_directory_fails_cleanly() {
    let dir = scratch("missing_dir");
    let net = Net::new(&Device::Cpu).unwrap();
    let path = dir.join("no/such/dir/net.safetensors");
    assert!(matches!(net.save(&path), Err(Error::Io { .. })));
    assert!(
        matches!(net.save(&dir), Err(Error::Io { .. })),
        "a directory is not a file"
    );
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(files.is_empty(), "no temporary file is left behind");
}

#[test]
fn dyn_modules_save_and_load() {
    let dev = Device::Cpu;
    let dir = scratch("dyn");
    let path = dir.join("seq.safetensors");
    let a: Box<dyn nn::Layer> =
        Box::new(nn::Sequential::new().add(Linear::new(2, 2, &dev).unwrap()));
    a.save(&path).unwrap();
    let b: Box<dyn Module> = Box::new(nn::Sequential::new().add(Linear::new(2, 2, &dev).unwrap()));
    nn::load(&*b, &path).unwrap();
    assert_eq!(snapshot(&*a), snapshot(&*b));
    nn::save(&*b, dir.join("again.safetensors")).unwrap();
}

/// Writes a safetensors file by hand: `header` (JSON) and `data` after it.
fn write_with_header(path: &std::path::Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_key_twice_in_the_header_is_an_error() {
    let dir = scratch("duplicate_key");
    let fc = Linear::new(1, 1, &Device::Cpu).unwrap();
    let before = snapshot(&fc);
    let path = dir.join("twice.safetensors");
    let entry = |at: usize| {
        format!(
            r#"{{"dtype":"F32","shape":[1],"data_offsets":[{at},{}]}}"#,
            at + 4
        )
    };
    let header = format!(
        r#"{{"weight":{{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}},"bias":{},"bias":{}}}"#,
        entry(4),
        entry(4)
    );
    let data: Vec<u8> = [1f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    write_with_header(&path, &header, &data);
    expect_checkpoint_err(fc.load(&path), &["`bias` twice"]);
    assert_eq!(snapshot(&fc), before);
}

/// The bytes `f` reads on the calling thread: the difference of the thread's `rchar`
/// (`/proc/thread-self/io`, Linux) around it, less the first query's own read.
#[cfg(target_os = "linux")]
fn bytes_read_by(f: impl FnOnce()) -> u64 {
    const IO: &str = "/proc/thread-self/io";
    let rchar = |io: &str| -> u64 {
        let line = io.lines().find(|l| l.starts_with("rchar:")).unwrap();
        line["rchar:".len()..].trim().parse().unwrap()
    };
    let before = std::fs::read_to_string(IO).unwrap();
    f();
    let after = std::fs::read_to_string(IO).unwrap();
    rchar(&after) - rchar(&before) - before.len() as u64
}

/// What the loader reads of any file first: its first 4 bytes, the zip magic number
/// that tells a `torch.save` archive from a safetensors file.
const FORMAT_SNIFF: u64 = 4;

/// `/dev/zero` never ends and reports a length of 0: the loader rejects it on its
/// first 8 bytes (a header length of 0) rather than reading on, and reads no more
/// than those and the format sniff (a bound on bytes, not on time, which a loaded
/// machine made flaky).
#[test]
fn loading_a_device_file_fails_fast() {
    let fc = Linear::new(1, 1, &Device::Cpu).unwrap();
    let load = || {
        expect_checkpoint_err(
            fc.load("/dev/zero"),
            &[
                "not a valid safetensors file",
                "the header claims 0 bytes, but the file has 0 after the length",
            ],
        )
    };
    #[cfg(target_os = "linux")]
    assert_eq!(bytes_read_by(load), FORMAT_SNIFF + 8);
    #[cfg(not(target_os = "linux"))]
    load();
}

/// A file of `8 + header + data_len` bytes whose header describes one U8 entry of
/// `claimed` elements; `data_len` bytes of data, sparse (no disk space).
fn claiming(dir: &std::path::Path, claimed: u64, data_len: u64) -> (PathBuf, u64) {
    let header =
        format!(r#"{{"big":{{"dtype":"U8","shape":[{claimed}],"data_offsets":[0,{claimed}]}}}}"#);
    let path = dir.join(format!("claims-{claimed}-{data_len}.safetensors"));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(bytes.len() as u64 + data_len).unwrap();
    (path, bytes.len() as u64)
}

/// A header may claim a 10 TB entry. In a short file that is an error after reading
/// the header and no more; in a (sparse) file that really is that long, reserving
/// the entry fails with `HostOutOfMemory` instead of aborting the process.
#[test]
fn a_header_claiming_terabytes_is_an_error_not_an_abort() {
    let dir = scratch("terabytes");
    let tb10 = 10_000_000_000_000u64;
    let (short, header) = claiming(&dir, tb10, 16);
    let load = || match kiln::load_tensors(&short, &Device::Cpu) {
        Err(Error::Checkpoint { msg, .. }) => assert!(msg.contains("describes a file of"), "{msg}"),
        other => panic!("expected Error::Checkpoint, got {other:?}"),
    };
    #[cfg(target_os = "linux")]
    assert_eq!(bytes_read_by(load), FORMAT_SNIFF + header);
    #[cfg(not(target_os = "linux"))]
    load();
    let (sparse, _) = claiming(&dir, tb10, tb10);
    match kiln::load_tensors(&sparse, &Device::Cpu) {
        Err(Error::HostOutOfMemory { bytes }) => assert_eq!(bytes as u64, tb10),
        other => panic!("expected Error::HostOutOfMemory, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn save_errors_name_the_users_path_not_the_temporary_file() {
    let dir = scratch("save_error_path");
    let path = dir.join("no/such/dir/net.safetensors");
    match Linear::new(1, 1, &Device::Cpu).unwrap().save(&path) {
        Err(Error::Io { path: shown, .. }) => assert_eq!(shown, path.display().to_string()),
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

#[derive(nn::Module)]
struct WithBroadcastBuffer {
    fc: Linear,
    table: nn::Buffer,
}

#[test]
fn a_load_that_cannot_write_a_later_entry_changes_nothing() {
    let dev = Device::Cpu;
    let table = Tensor::zeros(&[1, 3], DType::F32, &dev)
        .unwrap()
        .broadcast_as(&[2, 3])
        .unwrap();
    let m = WithBroadcastBuffer {
        fc: Linear::new(2, 2, &dev).unwrap(),
        table: nn::Buffer::new(table),
    };
    let before = snapshot(&m);
    let state: Vec<(String, Tensor)> = m
        .state_dict()
        .into_iter()
        .map(|(name, t)| (name, t.add_scalar(1.0).unwrap()))
        .collect();
    expect_checkpoint_err(m.load_state_dict(&state), &["`table` cannot be written"]);
    assert_eq!(snapshot(&m), before, "fc must not be half-loaded");
}
