//! Parameter initialisation with PyTorch's default formulas (`torch.nn.init` and the
//! `reset_parameters` of `nn.Linear` / `nn.Conv2d`). kiln's generator differs from
//! PyTorch's, so the values differ; the distributions are the same.

use super::Parameter;
use crate::{DType, Device, Error, Result, Tensor};

/// PyTorch's `_calculate_fan_in_and_fan_out` for a weight of `shape`
/// (`(out, in, *kernel)`): `fan_in = in · prod(kernel)`, `fan_out = out · prod(kernel)`.
/// Err for fewer than two dimensions.
pub fn calculate_fan_in_and_fan_out(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::arg(
            "shape",
            format!(
                "fan in and fan out need a weight with at least 2 dimensions, got shape {shape:?}"
            ),
        ));
    }
    let receptive_field: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive_field, shape[0] * receptive_field))
}

/// Samples from U(`low`, `high`) (PyTorch's `init.uniform_`).
pub fn uniform(
    shape: &[usize],
    low: f64,
    high: f64,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    if !(low.is_finite() && high.is_finite() && low <= high) {
        return Err(Error::arg(
            "low/high",
            format!("need finite bounds with low <= high, got [{low}, {high})"),
        ));
    }
    Tensor::rand(shape, dtype, device)?
        .mul_scalar(high - low)?
        .add_scalar(low)
}

/// PyTorch's `init.kaiming_uniform_(w, a, mode="fan_in", nonlinearity="leaky_relu")`:
/// U(-b, b) with `b = gain·√(3 / fan_in)` and `gain = √(2 / (1 + a²))`, i.e.
/// `b = √(6 / ((1 + a²)·fan_in))`. With PyTorch's layer default `a = √5` this is
/// `b = 1/√fan_in`. A weight with `fan_in = 0` has no elements and is returned empty.
pub fn kaiming_uniform(shape: &[usize], a: f64, dtype: DType, device: &Device) -> Result<Tensor> {
    if !a.is_finite() {
        return Err(Error::arg("a", format!("must be finite, got {a}")));
    }
    let (fan_in, _) = calculate_fan_in_and_fan_out(shape)?;
    if fan_in == 0 {
        return Tensor::zeros(shape, dtype, device);
    }
    let bound = (6.0 / ((1.0 + a * a) * fan_in as f64)).sqrt();
    uniform(shape, -bound, bound, dtype, device)
}

/// The weight (and optional bias) of a PyTorch `Linear` or `ConvNd` layer with its
/// default initialisation, as F32 parameters on `device`: the weight of shape
/// `weight_shape` (`(out, in)` or `(out, in / groups, kh, kw)`) from
/// `kaiming_uniform(a = √5)`, i.e. U(±1/√fan_in), and a bias of shape `(out,)` from
/// U(±1/√fan_in) (bound 0 when `fan_in` is 0), drawn after the weight.
pub fn default_weight_and_bias(
    weight_shape: &[usize],
    with_bias: bool,
    device: &Device,
) -> Result<(Parameter, Option<Parameter>)> {
    default_weight_and_bias_as(weight_shape, with_bias, DType::F32, device)
}

/// [`default_weight_and_bias`] with parameters of `dtype` (a float dtype: an `Err`
/// naming `dtype` otherwise), what a layer's `dtype` option asks for.
pub fn default_weight_and_bias_as(
    weight_shape: &[usize],
    with_bias: bool,
    dtype: DType,
    device: &Device,
) -> Result<(Parameter, Option<Parameter>)> {
    let bias_len = with_bias.then(|| weight_shape[0]);
    weight_and_bias_of_len(weight_shape, bias_len, dtype, device)
}

/// [`default_weight_and_bias_as`] with a bias of `bias_len` elements when given: a
/// transposed convolution's weight (in, out/groups, k..) does not start with its
/// output channels, yet PyTorch initialises both from the weight's fan-in.
pub(crate) fn weight_and_bias_of_len(
    weight_shape: &[usize],
    bias_len: Option<usize>,
    dtype: DType,
    device: &Device,
) -> Result<(Parameter, Option<Parameter>)> {
    check_param_dtype(dtype)?;
    let weight = kaiming_uniform(weight_shape, 5f64.sqrt(), dtype, device)?;
    let bias = if let Some(out) = bias_len {
        let (fan_in, _) = calculate_fan_in_and_fan_out(weight_shape)?;
        let bound = if fan_in > 0 {
            1.0 / (fan_in as f64).sqrt()
        } else {
            0.0
        };
        Some(Parameter::new(uniform(
            &[out],
            -bound,
            bound,
            dtype,
            device,
        )?)?)
    } else {
        None
    };
    Ok((Parameter::new(weight)?, bias))
}

/// Err naming `dtype` unless it is a float dtype: a layer's `dtype` option (only
/// floats have gradients).
pub(crate) fn check_param_dtype(dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::arg(
            "dtype",
            format!("layer parameters need a float dtype (F32, F64, F16, BF16), got {dtype:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_follow_pytorch() {
        // torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(6, 3, 5, 2)) == (30, 60)
        assert_eq!(
            calculate_fan_in_and_fan_out(&[6, 3, 5, 2]).unwrap(),
            (30, 60)
        );
        assert_eq!(calculate_fan_in_and_fan_out(&[84, 120]).unwrap(), (120, 84));
        assert!(calculate_fan_in_and_fan_out(&[5]).is_err());
    }

    #[test]
    fn default_init_stays_within_pytorch_bounds() {
        crate::manual_seed(7);
        let (w, b) = default_weight_and_bias(&[40, 3, 3, 3], true, &Device::Cpu).unwrap();
        let b = b.unwrap();
        assert!(w.is_parameter() && w.requires_grad_flag() && b.is_parameter());
        let bound = 1.0 / 27f64.sqrt();
        for t in [&*w, &*b] {
            let v = t.to_vec::<f32>().unwrap();
            assert!(v.iter().all(|&x| (x as f64).abs() <= bound));
            // U(-b, b) with over a thousand samples covers most of the interval.
            let max = v.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
            if v.len() > 1000 {
                assert!(max > 0.9 * bound, "max |w| {max} vs bound {bound}");
            }
        }
        assert_eq!(b.shape(), &[40]);
        let (_, none) = default_weight_and_bias(&[4, 2], false, &Device::Cpu).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn kaiming_bound_general_a() {
        crate::manual_seed(1);
        // a = 0: bound = sqrt(6 / fan_in) = sqrt(6/50)
        let w = kaiming_uniform(&[500, 50], 0.0, DType::F64, &Device::Cpu).unwrap();
        let v = w.to_vec::<f64>().unwrap();
        let bound = (6.0f64 / 50.0).sqrt();
        let max = v.iter().fold(0f64, |m, &x| m.max(x.abs()));
        assert!(max <= bound && max > 0.99 * bound);
        // Variance of U(-b, b) is b²/3 = 2/fan_in (He et al.).
        let var = v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
        assert!((var - 2.0 / 50.0).abs() < 0.002, "var {var}");
    }
}
