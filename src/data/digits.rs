//! The UCI 8×8 handwritten digits (scikit-learn's `digits.csv.gz`).

use super::{io_error, ImageDataset};
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Reads the digits CSV (optionally gzip-compressed): 64 pixel values 0..16 and a label
/// per line. Pixels are scaled to [0, 1].
pub fn load_digits(path: impl AsRef<Path>) -> Result<ImageDataset> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let mut text = String::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut text)
            .map_err(|e| io_error(path, e))?;
    } else {
        text = String::from_utf8(raw).map_err(|e| bad(path, 0, &e.to_string()))?;
    }
    let mut data = ImageDataset {
        images: Vec::new(),
        labels: Vec::new(),
        height: 8,
        width: 8,
    };
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(path, n + 1, &e.to_string()))?;
        if values.len() != 65 {
            return Err(bad(
                path,
                n + 1,
                &format!("expected 65 values, found {}", values.len()),
            ));
        }
        let label = values[64];
        if !(0.0..=9.0).contains(&label) || label.fract() != 0.0 {
            return Err(bad(path, n + 1, &format!("label {label} is not a digit")));
        }
        data.images.extend(values[..64].iter().map(|p| p / 16.0));
        // A digit 0..=9 (checked above): exact.
        #[allow(clippy::cast_possible_truncation)]
        data.labels.push(label as i64);
    }
    Ok(data)
}

fn bad(path: &Path, line: usize, msg: &str) -> Error {
    Error::arg("path", format!("{}: line {line}: {msg}", path.display()))
}
