//! `std::ops` operators on tensors: `&a + &b`, `&a - &b`, `&a * &b`, `&a / &b` (with
//! broadcasting), `&a + 2.0` and the other ops with an `f64`, and `-&a`. Each returns
//! `Result<Tensor>` (`(&a + &b)?`): there is no panicking form. Owned tensors work
//! too (`(&a + &b)? * 2.0`).

use super::Tensor;
use crate::Result;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// One operator for every combination of owned and borrowed tensors, and with an
/// `f64` on the right.
macro_rules! tensor_operator {
    ($trait:ident, $method:ident, $tensor_op:ident, $scalar_op:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$tensor_op(self, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$tensor_op(self, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: &Tensor) -> Result<Tensor> {
                Tensor::$tensor_op(&self, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: Tensor) -> Result<Tensor> {
                Tensor::$tensor_op(&self, &rhs)
            }
        }
        impl $trait<f64> for &Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f64) -> Result<Tensor> {
                Tensor::$scalar_op(self, rhs)
            }
        }
        impl $trait<f64> for Tensor {
            type Output = Result<Tensor>;
            fn $method(self, rhs: f64) -> Result<Tensor> {
                Tensor::$scalar_op(&self, rhs)
            }
        }
    };
}

tensor_operator!(Add, add, add, add_scalar);
tensor_operator!(Sub, sub, sub, sub_scalar);
tensor_operator!(Mul, mul, mul, mul_scalar);
tensor_operator!(Div, div, div, div_scalar);

impl Neg for &Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Result<Tensor>;
    fn neg(self) -> Result<Tensor> {
        Tensor::neg(&self)
    }
}
