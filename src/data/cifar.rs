//! CIFAR-10, binary version (`cifar-10-binary.tar.gz`, extracted: the folder
//! `cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (training) and
//! `test_batch.bin`, each a sequence of 3,073-byte records: the label byte (0–9), then
//! the 32×32 image as 1,024 red, 1,024 green and 1,024 blue bytes, rows top to bottom.

use super::{io_error, TensorDataset};
use crate::{Device, Error, Result, Tensor};
use std::path::Path;

/// The class names, by label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Bytes per image (3 × 32 × 32).
const PIXELS: usize = 3 * 32 * 32;
/// Bytes per record: the label, then the image.
const RECORD: usize = 1 + PIXELS;

/// Reads the binary CIFAR-10 from `dir`: `(train, test)`, 50,000 and 10,000 samples of
/// `[image (3, 32, 32) f32 in [0, 1], label () i64]` (the pixels scaled by 1/255, as
/// torchvision's `ToTensor`). Err naming `dir` for a missing file, naming the file for
/// one that is empty, truncated (not whole records) or holds a label above 9.
pub fn load_cifar10(dir: impl AsRef<Path>) -> Result<(TensorDataset, TensorDataset)> {
    let dir = dir.as_ref();
    let train: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    Ok((
        read_split(dir, &train)?,
        read_split(dir, &["test_batch.bin".into()])?,
    ))
}

/// The samples of `files`, in order.
fn read_split(dir: &Path, files: &[String]) -> Result<TensorDataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in files {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(Error::arg(
                "dir",
                format!(
                    "{} has no {name}: expected the binary CIFAR-10 (cifar-10-binary.tar.gz, \
                     extracted: the folder cifar-10-batches-bin with data_batch_1.bin … \
                     data_batch_5.bin and test_batch.bin)",
                    dir.display()
                ),
            ));
        }
        let raw = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        if raw.is_empty() || raw.len() % RECORD != 0 {
            return Err(Error::arg(
                "dir",
                format!(
                    "{}: {} bytes is not a whole number of {RECORD}-byte records (1 label byte \
                     + {PIXELS} pixel bytes); the file is empty or truncated",
                    path.display(),
                    raw.len()
                ),
            ));
        }
        for (r, record) in raw.chunks_exact(RECORD).enumerate() {
            if record[0] > 9 {
                return Err(Error::arg(
                    "dir",
                    format!(
                        "{}: record {r} has label {}, CIFAR-10 labels are 0..=9",
                        path.display(),
                        record[0]
                    ),
                ));
            }
            labels.push(i64::from(record[0]));
            pixels.extend(record[1..].iter().map(|&p| f32::from(p) / 255.0));
        }
    }
    let n = labels.len();
    let cpu = Device::Cpu;
    TensorDataset::new(vec![
        Tensor::from_vec(pixels, &[n, 3, 32, 32], &cpu)?,
        Tensor::from_vec(labels, &[n], &cpu)?,
    ])
}
