//! Element types.

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// IEEE half precision (`half::f16`).
    F16,
    /// bfloat16 (`half::bf16`).
    BF16,
    /// 64-bit signed integer (class indices).
    I64,
    /// 8-bit unsigned integer (masks, comparison results).
    U8,
}

impl DType {
    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
        }
    }

    /// True for the floating-point dtypes.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// The largest finite value of a float dtype, as f64.
    pub(crate) fn float_max(self) -> f64 {
        match self {
            DType::F32 => f64::from(f32::MAX),
            DType::F16 => half::f16::MAX.to_f64(),
            DType::BF16 => half::bf16::MAX.to_f64(),
            _ => f64::MAX,
        }
    }

    /// A scalar (a fill value, a clamp bound) as an element of this dtype holds it, by
    /// PyTorch's rules for converting a scalar, or `None` where PyTorch refuses it
    /// ("value cannot be converted to type uint8_t without overflow"):
    ///
    /// * a float dtype takes ±inf and NaN, and any finite value up to its largest
    ///   (`1e6` does not fit F16);
    /// * an integer dtype refuses NaN and ±inf. kiln's scalars are f64, and an
    ///   integral one is an integer scalar, as in the arithmetic ops: it must lie in
    ///   the dtype's range, except that U8 takes -255..=-1 and wraps them (-1 is 255,
    ///   as PyTorch's integer -1). A fractional one truncates toward zero, and must
    ///   lie in `[lowest, max + 1)` (U8: -0.5 is refused, 255.9 is 255).
    ///
    /// Every backend converts the result to the same element (an integer one is
    /// exact).
    pub(crate) fn scalar(self, value: f64) -> Option<f64> {
        let fits = if self.is_float() {
            !value.is_finite() || value.abs() <= self.float_max()
        } else {
            // [lowest, max + 1), both exact in f64.
            let (lowest, end) = match self {
                DType::U8 if value.fract() == 0.0 => (-255.0, 256.0),
                DType::U8 => (0.0, 256.0),
                _ => (-9_223_372_036_854_775_808.0, 9_223_372_036_854_775_808.0),
            };
            value >= lowest && value < end
        };
        fits.then(|| match self {
            _ if self.is_float() => value,
            DType::U8 if value < 0.0 => value.trunc() + 256.0,
            _ => value.trunc(),
        })
    }

    /// The name used in safetensors files and by PyTorch.
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::U8 => "U8",
        }
    }
}

/// A Rust type that can be stored in a tensor.
pub trait WithDType: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Lossy conversion to f64 (used by `item` and for conversions).
    fn to_f64(self) -> f64;
    /// Lossy conversion from f64.
    fn from_f64(v: f64) -> Self;
}

macro_rules! with_dtype {
    ($t:ty, $d:ident, $to:expr, $from:expr) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
        }
    };
}

with_dtype!(f32, F32, |v: f32| v as f64, |v: f64| v as f32);
with_dtype!(f64, F64, |v: f64| v, |v: f64| v);
with_dtype!(
    half::f16,
    F16,
    |v: half::f16| v.to_f64(),
    half::f16::from_f64
);
with_dtype!(
    half::bf16,
    BF16,
    |v: half::bf16| v.to_f64(),
    half::bf16::from_f64
);
with_dtype!(i64, I64, |v: i64| v as f64, |v: f64| v as i64);
with_dtype!(u8, U8, |v: u8| v as f64, |v: f64| v as u8);
