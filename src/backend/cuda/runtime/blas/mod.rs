//! Vendor GEMM: cuBLASLt, loaded at run time, where it is present and usable; kiln's
//! own kernels (`matmul.rs`, `kernels/matmul.cu`) otherwise.
//!
//! Which one runs on a device is decided once per device and can be changed from code
//! ([`set_choice`]) or the environment (`KILN_CUDA_GEMM=kiln|vendor|auto`, read when the
//! device's GEMM state is first needed). [`backend`] says which runs and, for kiln's
//! kernels, why: the user sees it through `kiln::cuda::gemm_backend`.
//!
//! * `auto` (the default): cuBLASLt when the library, every symbol kiln calls and a
//!   recent enough version are there and a handle can be made; else kiln's kernels.
//! * `kiln`: always kiln's kernels.
//! * `vendor`: cuBLASLt; from code an `Err` with the reason when it is not usable, from
//!   the environment a fallback to kiln's kernels whose reason names the variable
//!   (a process cannot refuse its own environment, and device opening must not fail
//!   over a GEMM preference).
//!
//! The emulated device never takes the vendor path.
//!
//! Per op the vendor path can still decline (a dtype cuBLASLt has no GEMM for, an
//! operand layout that no transpose flag and leading dimension describe — see
//! [`plan`] — or no algorithm from the heuristics): kiln's kernel then runs.

mod lt;
pub(crate) mod plan;

use super::device::{emulation_requested, CudaDevice};
use super::storage::CudaStorage;
use crate::shape::Layout;
use crate::shape::MatmulDims;
use crate::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub(crate) use lt::Act;

/// The environment variable that picks the GEMM backend.
const ENV: &str = "KILN_CUDA_GEMM";

/// Which GEMM implementation a device should use (see `kiln::cuda::set_gemm_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GemmChoice {
    /// cuBLASLt where it is usable, else kiln's kernels (the default).
    #[default]
    Auto,
    /// kiln's own kernels, always.
    Kiln,
    /// cuBLASLt; asking for it where it is not usable is an error.
    Vendor,
}

impl GemmChoice {
    /// The choice a value of `KILN_CUDA_GEMM` names (case-insensitive), if any.
    pub fn parse(value: &str) -> Option<GemmChoice> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(GemmChoice::Auto),
            "kiln" => Some(GemmChoice::Kiln),
            "vendor" | "cublas" | "cublaslt" => Some(GemmChoice::Vendor),
            _ => None,
        }
    }
}

/// Which GEMM runs matmul and linear on a device, and why (`kiln::cuda::gemm_backend`).
/// Displays as `cuBLASLt 13.0` or `kiln (libcublasLt not found)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GemmBackend {
    /// cuBLASLt of this major and minor version.
    CublasLt {
        /// Major version (`cublasLtGetVersion() / 10000`).
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// kiln's own kernels.
    Kiln {
        /// Why the vendor library is not used.
        reason: String,
    },
}

impl GemmBackend {
    /// True when cuBLASLt runs the GEMMs.
    pub fn is_vendor(&self) -> bool {
        matches!(self, GemmBackend::CublasLt { .. })
    }
}

impl std::fmt::Display for GemmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GemmBackend::CublasLt { major, minor } => write!(f, "cuBLASLt {major}.{minor}"),
            GemmBackend::Kiln { reason } => write!(f, "kiln ({reason})"),
        }
    }
}

/// The GEMM state of one device: the choice in force, where it came from, and the
/// cuBLASLt handle once made (or why it cannot be).
struct DeviceGemm {
    choice: Mutex<(GemmChoice, Source)>,
    lt: OnceLock<std::result::Result<Arc<lt::Lt>, String>>,
}

/// Where a device's choice came from (for the reason text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Default,
    Env,
    Code,
}

/// Set once an invalid `KILN_CUDA_GEMM` value has been reported on stderr.
static WARNED: AtomicBool = AtomicBool::new(false);

fn states() -> &'static Mutex<HashMap<usize, Arc<DeviceGemm>>> {
    static STATES: OnceLock<Mutex<HashMap<usize, Arc<DeviceGemm>>>> = OnceLock::new();
    STATES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The choice `KILN_CUDA_GEMM` makes, or the invalid value it holds.
fn env_choice() -> std::result::Result<Option<GemmChoice>, String> {
    match std::env::var(ENV) {
        Err(_) => Ok(None),
        Ok(v) => GemmChoice::parse(&v).map(Some).ok_or(v),
    }
}

/// Device `ordinal`'s state, created from the environment on first use.
fn state(ordinal: usize) -> Arc<DeviceGemm> {
    states()
        .lock()
        .entry(ordinal)
        .or_insert_with(|| {
            let choice = match env_choice() {
                Ok(Some(c)) => (c, Source::Env),
                Ok(None) => (GemmChoice::Auto, Source::Default),
                Err(bad) => {
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        eprintln!(
                            "kiln: {ENV}={bad:?} is not kiln, vendor or auto; using kiln's GEMM kernels"
                        );
                    }
                    (GemmChoice::Kiln, Source::Env)
                }
            };
            Arc::new(DeviceGemm {
                choice: Mutex::new(choice),
                lt: OnceLock::new(),
            })
        })
        .clone()
}

/// cuBLASLt for `dev`, made on first use, or why it is not usable.
fn vendor(dev: &CudaDevice, st: &DeviceGemm) -> std::result::Result<Arc<lt::Lt>, String> {
    if emulation_requested() {
        return Err("the emulated device runs kiln's kernels only; cuBLASLt needs a GPU".into());
    }
    st.lt
        .get_or_init(|| lt::Lt::open(dev).map(Arc::new))
        .clone()
}

/// The cuBLASLt handle to run `dev`'s GEMMs with, or why kiln's kernels run.
fn resolve(dev: &CudaDevice) -> std::result::Result<Arc<lt::Lt>, String> {
    let st = state(dev.ordinal());
    let (choice, source) = *st.choice.lock();
    if choice == GemmChoice::Kiln {
        return Err(match source {
            Source::Code => "set_gemm_backend(Kiln)".into(),
            _ => match env_choice() {
                Err(bad) => format!("{ENV}={bad:?} is not kiln, vendor or auto"),
                _ => format!("{ENV}=kiln"),
            },
        });
    }
    vendor(dev, &st).map_err(|why| match (choice, source) {
        (GemmChoice::Vendor, Source::Env) => format!("{ENV}=vendor, but {why}"),
        _ => why,
    })
}

/// Which GEMM runs on `dev`, and why.
pub(crate) fn backend(dev: &CudaDevice) -> GemmBackend {
    match resolve(dev) {
        Ok(lt) => {
            let (major, minor) = lt.version();
            GemmBackend::CublasLt { major, minor }
        }
        Err(reason) => GemmBackend::Kiln { reason },
    }
}

/// Sets the GEMM choice of `dev`. `Vendor` where cuBLASLt is not usable is an `Err`
/// naming the reason, and leaves the choice as it was.
pub(crate) fn set_choice(dev: &CudaDevice, choice: GemmChoice) -> Result<()> {
    let st = state(dev.ordinal());
    if choice == GemmChoice::Vendor {
        vendor(dev, &st).map_err(|why| {
            Error::arg(
                "choice",
                format!(
                    "GemmChoice::Vendor on CUDA device {}: cuBLASLt is not usable ({why})",
                    dev.ordinal()
                ),
            )
        })?;
    }
    *st.choice.lock() = (choice, Source::Code);
    Ok(())
}

/// `lhs · rhs` (+ `bias`, then `act`) by cuBLASLt into a new contiguous (batch, m, n)
/// storage, or `None` when kiln's kernels should run it: the device uses kiln's GEMM,
/// the dtype or an operand's layout has no cuBLASLt form, or no algorithm fits. `bias`
/// (n elements, contiguous from its offset) and `act` apply to batch-1 products only.
pub(crate) fn matmul(
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
    dims: MatmulDims,
    bias: Option<(&CudaStorage, usize)>,
    act: Act,
) -> Result<Option<CudaStorage>> {
    if bias.is_some_and(|(b, _)| b.dtype() != lhs.dtype()) {
        return Ok(None);
    }
    let bias = bias.map(|(b, offset)| b.ptr_at(offset));
    run(lhs, ll, rhs, rl, dims, bias, act, None)
}

/// `lhs · rhs` for one (m×k)·(k×n) product and, from the same cuBLASLt call (its
/// `BGRADB` epilogue), the sums of `lhs` over k (m elements): a linear layer's weight
/// and bias gradients from `gᵀ · x`. `None` where kiln's ops should compute them.
pub(crate) fn matmul_bias_grad(
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
    dims: MatmulDims,
) -> Result<Option<(CudaStorage, CudaStorage)>> {
    if dims.batch != 1 || resolve(lhs.cuda_device()).is_err() {
        return Ok(None);
    }
    let grad = CudaStorage::alloc(lhs.cuda_device(), dims.m, lhs.dtype())?;
    let out = run(lhs, ll, rhs, rl, dims, None, Act::None, Some(grad.ptr()))?;
    Ok(out.map(|out| (out, grad)))
}

/// The cuBLASLt call behind [`matmul`] and [`matmul_bias_grad`].
#[allow(clippy::too_many_arguments)]
fn run(
    lhs: &CudaStorage,
    ll: &Layout,
    rhs: &CudaStorage,
    rl: &Layout,
    dims: MatmulDims,
    bias: Option<u64>,
    act: Act,
    bgrad: Option<u64>,
) -> Result<Option<CudaStorage>> {
    let dev = lhs.cuda_device();
    let Ok(lt) = resolve(dev) else {
        return Ok(None);
    };
    let Some(p) = plan::plan(ll, rl, dims) else {
        return Ok(None);
    };
    let epilogue = bias.is_some() || bgrad.is_some() || act != Act::None;
    if (epilogue && p.batch != 1) || rhs.dtype() != lhs.dtype() {
        return Ok(None);
    }
    lt.matmul(
        dev,
        &lt::Call {
            plan: p,
            dtype: lhs.dtype(),
            a: rhs.ptr_at(rl.offset),
            b: lhs.ptr_at(ll.offset),
            bias,
            bgrad,
            act,
            tf32: crate::backend::cuda::runtime::config::matmul_allow_tf32(),
        },
        dims.batch * dims.m * dims.n,
    )
}
