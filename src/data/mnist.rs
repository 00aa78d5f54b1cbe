//! MNIST in the standard IDX format (`train-images-idx3-ubyte`, ... optionally `.gz`).

use super::{io_error, ImageDataset};
use crate::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` from `dir`:
/// returns (train, test) with pixels scaled to [0, 1].
pub fn load_mnist(dir: impl AsRef<Path>) -> Result<(ImageDataset, ImageDataset)> {
    let dir = dir.as_ref();
    let part = |prefix: &str| -> Result<ImageDataset> {
        let (images, n, h, w) = read_images(&find(dir, &format!("{prefix}-images-idx3-ubyte"))?)?;
        let labels = read_labels(&find(dir, &format!("{prefix}-labels-idx1-ubyte"))?)?;
        // Images of no pixels would make any label count fit, so they are refused too.
        if labels.len() != n || h == 0 || w == 0 {
            return Err(Error::arg(
                "dir",
                format!(
                    "{}: {prefix} has {} pixels in images of {h}×{w} but {} labels \
                     (each label needs one image of at least one pixel)",
                    dir.display(),
                    images.len(),
                    labels.len()
                ),
            ));
        }
        Ok(ImageDataset {
            images,
            labels,
            height: h,
            width: w,
        })
    };
    Ok((part("train")?, part("t10k")?))
}

fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::arg(
                "dir",
                format!("{} has no {name} (or {name}.gz)", dir.display()),
            )
        })
}

fn read_all(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| io_error(path, e))?;
    Ok(out)
}

/// Checks the IDX header (magic `0 0 8 rank`, big-endian sizes) and returns the sizes
/// and the payload.
fn parse_idx(path: &Path, bytes: &[u8], rank: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |msg: String| Error::arg("dir", format!("{}: {msg}", path.display()));
    let header = 4 + 4 * rank;
    if bytes.len() < header || bytes[..3] != [0, 0, 8] || bytes[3] as usize != rank {
        return Err(bad(format!(
            "not an IDX file of unsigned bytes with {rank} dimensions"
        )));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let payload = &bytes[header..];
    // Three 32-bit sizes can multiply past usize: checked, like every shape.
    let count = crate::shape::checked_product("load_mnist", "the IDX sizes", &dims)
        .map_err(|_| bad(format!("sizes {dims:?} multiply past usize")))?;
    if payload.len() != count {
        return Err(bad(format!(
            "sizes {dims:?} do not match the {} payload bytes",
            payload.len()
        )));
    }
    Ok((dims, payload.to_vec()))
}

/// The pixels scaled to [0, 1], and the image count, height and width.
fn read_images(path: &Path) -> Result<(Vec<f32>, usize, usize, usize)> {
    let (dims, px) = parse_idx(path, &read_all(path)?, 3)?;
    Ok((
        px.iter().map(|&p| f32::from(p) / 255.0).collect(),
        dims[0],
        dims[1],
        dims[2],
    ))
}

fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let (_, labels) = parse_idx(path, &read_all(path)?, 1)?;
    Ok(labels.into_iter().map(i64::from).collect())
}

/// Writes `n` images of `h`×`w` bytes in IDX format (for tests and tools).
pub fn write_idx_images(
    path: impl AsRef<Path>,
    pixels: &[u8],
    n: usize,
    h: usize,
    w: usize,
) -> Result<()> {
    write_idx(path.as_ref(), &[n, h, w], pixels)
}

/// Writes labels in IDX format (for tests and tools).
pub fn write_idx_labels(path: impl AsRef<Path>, labels: &[u8]) -> Result<()> {
    write_idx(path.as_ref(), &[labels.len()], labels)
}

fn write_idx(path: &Path, dims: &[usize], payload: &[u8]) -> Result<()> {
    let rank = u8::try_from(dims.len()).map_err(|_| {
        Error::arg(
            "dims",
            format!("{} dims do not fit IDX's rank byte", dims.len()),
        )
    })?;
    let mut bytes = vec![0, 0, 8, rank];
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| Error::arg("dims", format!("{d} does not fit IDX's 32 bits")))?;
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(payload);
    std::fs::write(path, bytes).map_err(|e| io_error(path, e))
}
