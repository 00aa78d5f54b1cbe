//! Process-wide CUDA settings that the ops read at each call. `kiln::cuda::set_*` is
//! their public face (src/cuda.rs); they live here so that the ops never import the
//! public facade above them.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether f32 matmul and linear may use TF32: false until set.
static MATMUL_ALLOW_TF32: AtomicBool = AtomicBool::new(false);
/// Whether f32 convolutions may use TF32: true until set.
static CONV_ALLOW_TF32: AtomicBool = AtomicBool::new(true);

/// Sets whether f32 matmul and linear may use TF32 tensor cores.
pub(crate) fn set_matmul_allow_tf32(allow: bool) {
    MATMUL_ALLOW_TF32.store(allow, Ordering::Relaxed);
}

/// Whether f32 matmul and linear may use TF32 (default false).
pub(crate) fn matmul_allow_tf32() -> bool {
    MATMUL_ALLOW_TF32.load(Ordering::Relaxed)
}

/// Sets whether f32 convolutions may use TF32 tensor cores.
pub(crate) fn set_conv_allow_tf32(allow: bool) {
    CONV_ALLOW_TF32.store(allow, Ordering::Relaxed);
}

/// Whether f32 convolutions may use TF32 (default true).
pub(crate) fn conv_allow_tf32() -> bool {
    CONV_ALLOW_TF32.load(Ordering::Relaxed)
}
