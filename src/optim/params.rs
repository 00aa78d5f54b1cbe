//! The parameters an optimizer holds, and the pitfall checks made before each step.

use crate::{Error, Result, Tensor};

/// One parameter held by an optimizer, with the name used in error messages.
#[derive(Clone, Debug)]
pub struct OptimParam {
    /// The leaf tensor updated in place.
    pub tensor: Tensor,
    /// Its name (from `named_parameters`) or a description built from its position.
    pub name: String,
}

impl From<Tensor> for OptimParam {
    fn from(tensor: Tensor) -> Self {
        OptimParam {
            name: String::new(),
            tensor,
        }
    }
}

impl From<&Tensor> for OptimParam {
    fn from(tensor: &Tensor) -> Self {
        tensor.clone().into()
    }
}

impl From<crate::nn::Parameter> for OptimParam {
    fn from(p: crate::nn::Parameter) -> Self {
        p.tensor().into()
    }
}

impl From<(String, crate::nn::Parameter)> for OptimParam {
    fn from((name, p): (String, crate::nn::Parameter)) -> Self {
        OptimParam {
            name,
            tensor: p.tensor().clone(),
        }
    }
}

impl From<(String, Tensor)> for OptimParam {
    fn from((name, tensor): (String, Tensor)) -> Self {
        OptimParam { name, tensor }
    }
}

/// The parameters of one optimizer and its opt-outs from the pitfall checks.
#[derive(Debug)]
pub struct ParamSet {
    params: Vec<OptimParam>,
    allow_unused: bool,
    allow_unregistered: bool,
}

impl ParamSet {
    /// Err for an empty list (as PyTorch), a parameter that does not require grad, is
    /// not a float or is a broadcast view (which cannot be updated in place), and a
    /// parameter listed twice (it would be updated twice per step; PyTorch raises
    /// too). Two handles on the same elements of one storage count as one parameter
    /// (disjoint views of one buffer are distinct parameters).
    pub fn new<P: Into<OptimParam>>(params: impl IntoIterator<Item = P>) -> Result<Self> {
        let mut set = ParamSet {
            params: Vec::new(),
            allow_unused: false,
            allow_unregistered: false,
        };
        set.add(params.into_iter().map(Into::into).collect())?;
        Ok(set)
    }

    /// Appends `params` (another parameter group) with the checks of
    /// [`ParamSet::new`], also against the parameters already held: a parameter may
    /// be in one group only. Returns how many were added; nothing changes on error.
    pub fn add(&mut self, mut params: Vec<OptimParam>) -> Result<usize> {
        if params.is_empty() {
            return Err(Error::arg(
                "params",
                "the optimizer got an empty parameter list",
            ));
        }
        let first = self.params.len();
        for (i, p) in params.iter_mut().enumerate() {
            if p.name.is_empty() {
                p.name = format!("parameter {} of shape {:?}", first + i, p.tensor.shape());
            }
            if !p.tensor.requires_grad_flag() || !p.tensor.is_leaf() {
                return Err(Error::arg(
                    "params",
                    format!("{} is not a leaf that requires grad", p.name),
                ));
            }
            if !p.tensor.dtype().is_float() {
                return Err(Error::UnsupportedDType {
                    op: "optimizer",
                    dtype: p.tensor.dtype(),
                });
            }
            p.tensor.check_writable("optimizer").map_err(|_| {
                Error::arg(
                    "params",
                    format!(
                        "{} is a broadcast view, which cannot be updated in place",
                        p.name
                    ),
                )
            })?;
        }
        for (i, p) in params.iter().enumerate() {
            if let Some(q) = self
                .params
                .iter()
                .chain(&params[..i])
                .find(|q| same_elements(&q.tensor, &p.tensor))
            {
                return Err(Error::arg(
                    "params",
                    format!(
                        "{} and {} are the same parameter (the same elements of one storage): \
                         an optimizer must hold each parameter once, in one group",
                        q.name, p.name
                    ),
                ));
            }
        }
        let added = params.len();
        self.params.extend(params);
        Ok(added)
    }

    /// The parameters.
    pub fn params(&self) -> &[OptimParam] {
        &self.params
    }

    /// Skip the "parameter got no gradient" check.
    pub fn set_allow_unused(&mut self, allow: bool) {
        self.allow_unused = allow;
    }

    /// Skip the "gradient reached a parameter this optimizer does not hold" check.
    pub fn set_allow_unregistered(&mut self, allow: bool) {
        self.allow_unregistered = allow;
    }

    /// Clears every gradient.
    pub fn zero_grad(&self) {
        self.params.iter().for_each(|p| p.tensor.zero_grad());
    }

    /// The pitfall checks made before any update.
    pub fn check(&self) -> Result<()> {
        if !self.allow_unregistered {
            crate::autograd::check_unregistered_parameters(
                self.params.iter().map(|p| p.tensor.id()),
            )?;
        }
        if !self.allow_unused {
            let names: Vec<String> = self
                .params
                .iter()
                .filter(|p| p.tensor.grad().is_none())
                .map(|p| p.name.clone())
                .collect();
            if !names.is_empty() {
                return Err(Error::UnusedParameters { names });
            }
        }
        Ok(())
    }

    /// Each parameter with its gradient (parameters without one are skipped).
    pub fn with_grads(&self) -> impl Iterator<Item = (usize, &Tensor, Tensor)> {
        self.params
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.tensor.grad().map(|g| (i, &p.tensor, g)))
    }
}

/// True when `a` and `b` are the same elements of one storage (the same view).
fn same_elements(a: &Tensor, b: &Tensor) -> bool {
    a.same_storage(b)
        && a.storage_offset() == b.storage_offset()
        && a.shape() == b.shape()
        && a.strides() == b.strides()
}
