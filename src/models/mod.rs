//! Ready-made models built from kiln's layers (feature `models`, on by default).

pub mod gpt;
