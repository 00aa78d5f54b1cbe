//! Launch of `kernels/random.cu`: the Philox stream on the device.

use super::device::CudaDevice;
use super::kernels::KernelId;
use super::launch::{KernelArg, LaunchConfig};
use crate::rng::PhiloxStream;
use crate::Result;
use std::sync::Arc;

/// `n` words of `stream` computed on the device (the same words as
/// [`PhiloxStream::words`] on the CPU).
pub(crate) fn philox_words(
    dev: &Arc<CudaDevice>,
    stream: PhiloxStream,
    n: usize,
) -> Result<Vec<u32>> {
    let mut words = vec![0u32; n];
    if n == 0 {
        return Ok(words);
    }
    let buf = dev.alloc(n * 4)?;
    let blocks = n.div_ceil(4) as u64;
    dev.launch(
        KernelId::PhiloxWords,
        LaunchConfig::elementwise(blocks, dev.sm_count()),
        &[
            KernelArg::U64(n as u64),
            KernelArg::U64(stream.seed),
            KernelArg::U64(stream.offset),
            KernelArg::Ptr(buf.ptr()),
        ],
    )?;
    let mut bytes = vec![0u8; n * 4];
    dev.copy_dtoh(&mut bytes, buf.ptr())?;
    for (w, b) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(words)
}
