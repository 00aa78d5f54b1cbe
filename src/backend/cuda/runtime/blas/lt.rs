//! cuBLASLt through cudarc's bindings (loaded at run time).
//!
//! cudarc panics when its library or one of its symbols is missing, so [`probe`] checks
//! first — the library (`is_culib_present`), every function this file calls
//! (`culib().get`), the version — and nothing here calls into cuBLASLt until the probe
//! has passed. Each device gets one handle, made lazily (`Lt::open`) and shared by all
//! threads: a cuBLASLt handle only holds the library context, while the stream and the
//! workspace are arguments of every `cublasLtMatmul`, here kiln's stream and a block of
//! kiln's caching allocator (so `memory_stats` counts it). The algorithm the heuristics
//! pick is cached per problem (plan, dtype, compute type, epilogue, alignments).

use super::plan::{GemmPlan, Operand, Trans};
use crate::backend::cuda::device::CudaDevice;
use crate::backend::cuda::runtime::storage::CudaStorage;
use crate::{DType, Error, Result};
use cudarc::cublaslt::result::{self as ffi, CublasError};
use cudarc::cublaslt::sys;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

/// Every cuBLASLt function kiln calls (directly or through cudarc's `result` module).
const SYMBOLS: [&str; 13] = [
    "cublasLtGetVersion",
    "cublasLtCreate",
    "cublasLtMatmulDescCreate",
    "cublasLtMatmulDescSetAttribute",
    "cublasLtMatmulDescDestroy",
    "cublasLtMatrixLayoutCreate",
    "cublasLtMatrixLayoutSetAttribute",
    "cublasLtMatrixLayoutDestroy",
    "cublasLtMatmulPreferenceCreate",
    "cublasLtMatmulPreferenceSetAttribute",
    "cublasLtMatmulPreferenceDestroy",
    "cublasLtMatmulAlgoGetHeuristic",
    "cublasLtMatmul",
];

/// The oldest major version used: the bindings are CUDA 13.0's, whose attribute and
/// epilogue values cuBLASLt 12 shares.
const MIN_MAJOR: u32 = 12;

/// The most workspace an algorithm may ask for (what PyTorch allows on Hopper); each
/// call takes only what its algorithm needs, from the caching allocator.
const MAX_WORKSPACE: u64 = 32 << 20;

/// `CUBLAS_OP_N` and `CUBLAS_OP_T` (cublas_api.h; cuBLASLt reads them as int32).
const OP_N: i32 = 0;
const OP_T: i32 = 1;

/// An activation cuBLASLt applies in the GEMM's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Act {
    /// None.
    None,
    /// `max(x, 0)`.
    Relu,
    /// GELU's tanh approximation (cuBLASLt's GELU epilogue).
    GeluTanh,
}

/// The library version, or why cuBLASLt cannot be used (checked once per process).
fn probe() -> std::result::Result<(u32, u32), String> {
    static PROBE: OnceLock<std::result::Result<(u32, u32), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            // SAFETY: only tries to dlopen the library by its usual names.
            if !unsafe { sys::is_culib_present() } {
                return Err("libcublasLt not found".into());
            }
            // SAFETY: the library loads (checked above), so `culib` does not panic; it
            // tries the same names in the same order.
            let lib = unsafe { sys::culib() };
            for name in SYMBOLS {
                // SAFETY: a lookup only; nothing is called through the pointer.
                if unsafe { lib.get::<*mut c_void>(name.as_bytes()) }.is_err() {
                    return Err(format!("libcublasLt lacks {name}"));
                }
            }
            // SAFETY: the symbol exists (probed above); it takes no arguments.
            let v = unsafe { sys::cublasLtGetVersion() };
            let (major, minor) = ((v / 10_000) as u32, (v / 100 % 100) as u32);
            if major < MIN_MAJOR {
                return Err(format!(
                    "cuBLASLt {major}.{minor} is older than {MIN_MAJOR}.0"
                ));
            }
            Ok((major, minor))
        })
        .clone()
}

/// A cuBLASLt handle; never destroyed (devices live for the whole process).
struct Handle(sys::cublasLtHandle_t);

// SAFETY: a cuBLASLt handle is a library context that cuBLASLt allows any thread to use;
// every call passes its own stream and workspace, so no per-call state lives in it.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

/// The heuristics' pick for one problem.
#[derive(Clone, Copy)]
struct Algo {
    algo: sys::cublasLtMatmulAlgo_t,
    workspace: usize,
}

/// What the algorithm cache is keyed by: everything the heuristics look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    plan: GemmPlan,
    dtype: DType,
    tf32: bool,
    act: Act,
    bias: bool,
    bgrad: bool,
    align: [u32; 3],
}

/// cuBLASLt on one device.
pub(crate) struct Lt {
    handle: Handle,
    version: (u32, u32),
    /// The algorithm per problem (`None`: the heuristics found none).
    algos: Mutex<HashMap<Key, Option<Algo>>>,
}

/// One product: `D = op(A)·op(B)` (+ bias, then act), with the library's operands.
pub(crate) struct Call {
    /// The column-major plan.
    pub plan: GemmPlan,
    /// Element type of A, B, D and the bias.
    pub dtype: DType,
    /// Device address of the library's A (kiln's right-hand side) at its offset.
    pub a: u64,
    /// Device address of the library's B (kiln's left-hand side) at its offset.
    pub b: u64,
    /// Device address of the bias (`plan.m` elements), if any.
    pub bias: Option<u64>,
    /// Device address where the epilogue writes the sums of op(B) over k (`plan.n`
    /// elements: kiln's bias gradient, `BGRADB`), if asked; never with `bias`/`act`.
    pub bgrad: Option<u64>,
    /// The epilogue's activation.
    pub act: Act,
    /// Whether f32 may use TF32 tensor cores.
    pub tf32: bool,
}

/// The error of a failed cuBLASLt call.
fn lt_err(op: &'static str) -> impl Fn(CublasError) -> Error {
    move |e| Error::CudaDriver {
        op,
        msg: format!("{e}"),
    }
}

/// The largest power of two (≤ 256) dividing a device address: the alignment the
/// heuristics may assume (they assume 256 bytes unless told).
fn alignment(ptr: u64) -> u32 {
    1 << (ptr | 256).trailing_zeros()
}

/// A cuBLASLt object destroyed on drop.
struct Owned<T: Copy> {
    raw: T,
    destroy: unsafe fn(T) -> std::result::Result<(), CublasError>,
}

impl<T: Copy> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: `raw` was created by the matching create call and is destroyed once.
        let _ = unsafe { (self.destroy)(self.raw) };
    }
}

/// The signature shared by cuBLASLt's three `*SetAttribute` functions.
type SetAttr<D, A> = unsafe fn(D, A, *const c_void, usize) -> std::result::Result<(), CublasError>;

/// Sets attribute `attr` of `obj` to the plain value `v` (its size is the attribute's).
fn set<D: Copy, A: Copy, T>(
    f: SetAttr<D, A>,
    obj: &Owned<D>,
    attr: A,
    v: &T,
) -> std::result::Result<(), CublasError> {
    // SAFETY: `obj` is live; `v` is a value of the C type the attribute takes, read for
    // `size_of::<T>()` bytes during the call only.
    unsafe {
        f(
            obj.raw,
            attr,
            v as *const T as *const c_void,
            size_of::<T>(),
        )
    }
}

/// (matrix type, compute type, scale type) of a dtype, if cuBLASLt has a GEMM for it.
fn types(
    dtype: DType,
    tf32: bool,
) -> Option<(
    sys::cudaDataType,
    sys::cublasComputeType_t,
    sys::cudaDataType,
)> {
    use sys::cublasComputeType_t::*;
    use sys::cudaDataType::*;
    Some(match dtype {
        DType::F32 if tf32 => (CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F),
        DType::F32 => (CUDA_R_32F, CUBLAS_COMPUTE_32F, CUDA_R_32F),
        DType::F64 => (CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F),
        DType::F16 => (CUDA_R_16F, CUBLAS_COMPUTE_32F, CUDA_R_32F),
        DType::BF16 => (CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F),
        DType::I64 | DType::U8 => return None,
    })
}

/// The epilogue for a bias and an activation, or for a bias gradient (`bgrad`).
fn epilogue(bias: bool, act: Act, bgrad: bool) -> sys::cublasLtEpilogue_t {
    use sys::cublasLtEpilogue_t::*;
    if bgrad {
        return CUBLASLT_EPILOGUE_BGRADB;
    }
    match (bias, act) {
        (false, Act::None) => CUBLASLT_EPILOGUE_DEFAULT,
        (true, Act::None) => CUBLASLT_EPILOGUE_BIAS,
        (false, Act::Relu) => CUBLASLT_EPILOGUE_RELU,
        (true, Act::Relu) => CUBLASLT_EPILOGUE_RELU_BIAS,
        (false, Act::GeluTanh) => CUBLASLT_EPILOGUE_GELU,
        (true, Act::GeluTanh) => CUBLASLT_EPILOGUE_GELU_BIAS,
    }
}

/// A layout descriptor for a stored rows×cols matrix, batched as `batch` matrices
/// `batch_stride` elements apart.
fn layout(
    ty: sys::cudaDataType,
    rows: u64,
    cols: u64,
    ld: i64,
    batch: i32,
    batch_stride: i64,
) -> std::result::Result<Owned<sys::cublasLtMatrixLayout_t>, CublasError> {
    use sys::cublasLtMatrixLayoutAttribute_t::*;
    let l = Owned {
        raw: ffi::create_matrix_layout(ty, rows, cols, ld)?,
        destroy: ffi::destroy_matrix_layout,
    };
    if batch > 1 {
        let f: SetAttr<_, _> = ffi::set_matrix_layout_attribute;
        set(f, &l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch)?;
        set(
            f,
            &l,
            CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
            &batch_stride,
        )?;
    }
    Ok(l)
}

/// The layout descriptor of a planned operand.
fn operand(
    ty: sys::cudaDataType,
    o: &Operand,
    batch: i32,
) -> std::result::Result<Owned<sys::cublasLtMatrixLayout_t>, CublasError> {
    layout(ty, o.rows, o.cols, o.ld, batch, o.batch_stride)
}

/// The descriptors of one product.
struct Descs {
    desc: Owned<sys::cublasLtMatmulDesc_t>,
    a: Owned<sys::cublasLtMatrixLayout_t>,
    b: Owned<sys::cublasLtMatrixLayout_t>,
    d: Owned<sys::cublasLtMatrixLayout_t>,
}

impl Descs {
    fn new(call: &Call) -> std::result::Result<Option<Descs>, CublasError> {
        use sys::cublasLtMatmulDescAttributes_t::*;
        let Some((ty, compute, scale)) = types(call.dtype, call.tf32) else {
            return Ok(None);
        };
        let p = &call.plan;
        let desc = Owned {
            raw: ffi::create_matmul_desc(compute, scale)?,
            destroy: ffi::destroy_matmul_desc,
        };
        let f: SetAttr<_, _> = ffi::set_matmul_desc_attribute;
        let op = |t: Trans| if t == Trans::T { OP_T } else { OP_N };
        set(f, &desc, CUBLASLT_MATMUL_DESC_TRANSA, &op(p.a.trans))?;
        set(f, &desc, CUBLASLT_MATMUL_DESC_TRANSB, &op(p.b.trans))?;
        let epi = epilogue(call.bias.is_some(), call.act, call.bgrad.is_some());
        if epi != sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT {
            set(f, &desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi)?;
        }
        // The bias to read, or the bias gradient to write.
        if let Some(vector) = call.bias.or(call.bgrad) {
            let ptr = vector as *const c_void;
            set(f, &desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &ptr)?;
        }
        Ok(Some(Descs {
            desc,
            a: operand(ty, &p.a, p.batch)?,
            b: operand(ty, &p.b, p.batch)?,
            d: layout(ty, p.m, p.n, p.ldd, p.batch, p.batch_stride_d)?,
        }))
    }
}

/// alpha = 1 and beta = 0 in the scale type.
enum Scalars {
    F32([f32; 2]),
    F64([f64; 2]),
}

impl Scalars {
    fn for_dtype(dtype: DType) -> Scalars {
        if dtype == DType::F64 {
            Scalars::F64([1.0, 0.0])
        } else {
            Scalars::F32([1.0, 0.0])
        }
    }

    /// Pointers to alpha and beta.
    fn ptrs(&self) -> (*const c_void, *const c_void) {
        match self {
            Scalars::F32(v) => (&v[0] as *const f32 as _, &v[1] as *const f32 as _),
            Scalars::F64(v) => (&v[0] as *const f64 as _, &v[1] as *const f64 as _),
        }
    }
}

impl Lt {
    /// cuBLASLt for `dev`: probes the library, binds the device's context, makes the
    /// handle. The error says why cuBLASLt is not usable.
    pub(crate) fn open(dev: &CudaDevice) -> std::result::Result<Lt, String> {
        let version = probe()?;
        match dev.exec().library_stream() {
            Ok(Some(_)) => {}
            Ok(None) => return Err("the device has no driver stream for cuBLASLt".into()),
            Err(e) => return Err(format!("binding the device's context failed: {e}")),
        }
        let handle = ffi::create_handle().map_err(|e| format!("cublasLtCreate failed: {e}"))?;
        Ok(Lt {
            handle: Handle(handle),
            version,
            algos: Mutex::new(HashMap::new()),
        })
    }

    /// (major, minor) of the library.
    pub(crate) fn version(&self) -> (u32, u32) {
        self.version
    }

    /// The heuristics' best algorithm for `descs` (cached under `key`).
    fn algo(&self, key: Key, descs: &Descs) -> Result<Option<Algo>> {
        if let Some(hit) = self.algos.lock().get(&key) {
            return Ok(*hit);
        }
        use sys::cublasLtMatmulPreferenceAttributes_t::*;
        let pref = Owned {
            raw: ffi::create_matmul_pref().map_err(lt_err("cublasLtMatmulPreferenceCreate"))?,
            destroy: ffi::destroy_matmul_pref,
        };
        let f: SetAttr<_, _> = ffi::set_matmul_pref_attribute;
        let attrs = [
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
        ];
        set(
            f,
            &pref,
            CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            &MAX_WORKSPACE,
        )
        .and_then(|()| {
            attrs
                .into_iter()
                .zip(key.align)
                .try_for_each(|(attr, align)| set(f, &pref, attr, &align))
        })
        .map_err(lt_err("cublasLtMatmulPreferenceSetAttribute"))?;
        // SAFETY: every descriptor is live; C is D (same layout, beta = 0).
        let found = unsafe {
            ffi::get_matmul_algo_heuristic(
                self.handle.0,
                descs.desc.raw,
                descs.a.raw,
                descs.b.raw,
                descs.d.raw,
                descs.d.raw,
                pref.raw,
            )
        };
        // No algorithm (or a problem the heuristics refuse): kiln's kernel runs it.
        let algo = found.ok().map(|r| Algo {
            algo: r.algo,
            workspace: r.workspaceSize,
        });
        self.algos.lock().insert(key, algo);
        Ok(algo)
    }

    /// Runs `call` into a new contiguous storage of `len` elements on `dev`'s stream, or
    /// `None` when cuBLASLt has no algorithm for it.
    pub(crate) fn matmul(
        &self,
        dev: &Arc<CudaDevice>,
        call: &Call,
        len: usize,
    ) -> Result<Option<CudaStorage>> {
        // Bias vectors are read with vector loads: only aligned ones are fused.
        if call.bias.is_some_and(|b| alignment(b) < 16) {
            return Ok(None);
        }
        let Some(descs) = Descs::new(call).map_err(lt_err("cublasLtMatmulDescCreate"))? else {
            return Ok(None);
        };
        let Some(stream) = dev.exec().library_stream()? else {
            return Ok(None);
        };
        let out = CudaStorage::alloc(dev, len, call.dtype)?;
        let key = Key {
            plan: call.plan,
            dtype: call.dtype,
            tf32: call.tf32 && call.dtype == DType::F32,
            act: call.act,
            bias: call.bias.is_some(),
            bgrad: call.bgrad.is_some(),
            align: [alignment(call.a), alignment(call.b), alignment(out.ptr())],
        };
        let Some(algo) = self.algo(key, &descs)? else {
            return Ok(None);
        };
        let workspace = dev.alloc(algo.workspace)?;
        let scalars = Scalars::for_dtype(call.dtype);
        let (alpha, beta) = scalars.ptrs();
        crate::profiler::launch(); // one cuBLASLt call, counted as one launch
                                   // SAFETY: the descriptors describe A, B and D as planned (plan.rs: every element
                                   // op(A) and op(B) address lies in the operands' storages; D is `out`, M·N·batch
                                   // elements); `workspace` holds the algorithm's workspace; the context is current
                                   // (`library_stream` bound it); the stream is kiln's, so the kernels run in order
                                   // with kiln's and the allocator's stream-ordered reuse covers `workspace` and the
                                   // operands, which outlive the queuing of the call.
        unsafe {
            ffi::matmul(
                self.handle.0,
                descs.desc.raw,
                alpha,
                beta,
                call.a as *const c_void,
                descs.a.raw,
                call.b as *const c_void,
                descs.b.raw,
                out.ptr() as *const c_void,
                descs.d.raw,
                out.ptr() as *mut c_void,
                descs.d.raw,
                &algo.algo,
                workspace.ptr() as *mut c_void,
                algo.workspace,
                stream as sys::cudaStream_t,
            )
        }
        .map_err(lt_err("cublasLtMatmul"))?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_the_largest_power_of_two_up_to_256() {
        assert_eq!(alignment(0), 256);
        assert_eq!(alignment(0x7f00_0000_0200), 256);
        assert_eq!(alignment(0x1000 + 4), 4);
        assert_eq!(alignment(0x1000 + 48), 16);
        assert_eq!(alignment(2), 2);
    }

    #[test]
    fn every_float_dtype_has_a_cublaslt_type_and_tf32_only_changes_f32() {
        use sys::cublasComputeType_t::*;
        for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let (plain, fast) = (types(dt, false).unwrap(), types(dt, true).unwrap());
            assert_eq!(plain.1 != fast.1, dt == DType::F32, "{dt:?}");
        }
        assert_eq!(
            types(DType::F32, true).unwrap().1,
            CUBLAS_COMPUTE_32F_FAST_TF32
        );
        assert_eq!(types(DType::F32, false).unwrap().1, CUBLAS_COMPUTE_32F);
        assert_eq!(types(DType::BF16, true).unwrap().1, CUBLAS_COMPUTE_32F);
        assert!(types(DType::I64, false).is_none() && types(DType::U8, true).is_none());
    }

    #[test]
    fn epilogues_cover_each_bias_and_activation() {
        use sys::cublasLtEpilogue_t::*;
        assert_eq!(epilogue(false, Act::None, false), CUBLASLT_EPILOGUE_DEFAULT);
        assert_eq!(
            epilogue(true, Act::Relu, false),
            CUBLASLT_EPILOGUE_RELU_BIAS
        );
        assert_eq!(
            epilogue(true, Act::GeluTanh, false),
            CUBLASLT_EPILOGUE_GELU_BIAS
        );
        assert_eq!(
            epilogue(false, Act::GeluTanh, false),
            CUBLASLT_EPILOGUE_GELU
        );
        assert_eq!(epilogue(false, Act::None, true), CUBLASLT_EPILOGUE_BGRADB);
    }

    #[test]
    fn the_probe_never_panics_and_explains_a_failure() {
        // On a machine without cuBLASLt this is the "not found" reason; with it, a version.
        match probe() {
            Ok((major, _)) => assert!(major >= MIN_MAJOR),
            Err(why) => assert!(
                why.contains("cublasLt") || why.contains("cuBLASLt"),
                "{why}"
            ),
        }
    }
}
