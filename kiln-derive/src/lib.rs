//! `#[derive(Module)]` for kiln, re-exported as `kiln::nn::Module` (the derive and
//! the trait share the name, as serde's `Serialize` does).
//!
//! The derive implements `kiln::nn::Module::visit` by handing every field, in
//! declaration order, to `kiln::nn::ModuleField::visit_field` with the field's name.
//! The field's *type* decides what it contributes, so the macro needs no guessing
//! from type names:
//!
//! * `nn::Parameter` → a parameter, `nn::Buffer` → a buffer, `nn::Mode` → the
//!   module's own train/eval flag;
//! * any type that implements `nn::Module` (including `Box<dyn nn::Layer>`) → a child;
//! * `Vec<T>`, `[T; N]` → `name.0`, `name.1`, …; `Option<T>` → `name` when `Some`;
//! * plain configuration values (`usize`, `f64`, `bool`, `String`, …) → nothing.
//!
//! Any other field type is a compile error that suggests `#[module(skip)]`, which
//! leaves a field out. Tuple structs name their fields `0`, `1`, …; enums and unions
//! are rejected.
//!
//! **Printing.** The derive also writes `Module::type_name` (the struct's name, which
//! `nn::summary` prints like PyTorch's `print(model)`). A struct marked
//! `#[module(extra_repr)]` has its inherent `fn extra_repr(&self) -> String` (the
//! arguments printed between the parentheses, PyTorch's `extra_repr`) used as
//! `Module::extra_repr`.
//!
//! **Somewhere to keep the mode.** `is_training()` must follow `train()`/`eval()`,
//! so a module needs a place for its flag: an `nn::Mode` field, a child module
//! (which keeps one), or an `nn::Parameter` / `nn::Buffer` field (each carries a
//! slot for its holder's mode). A struct with none of these — only mode-less unit
//! layers such as `nn::ReLU` and configuration values — is a compile error that
//! says to add `mode: nn::Mode`, unless it is marked `#[module(stateless)]`: a
//! module that acts the same in both modes and whose `is_training()` is always
//! `true` (the built-in activations and pools). The check reads field types by
//! name, as the macro sees no type information.
//!
//! Generated code refers to the runtime crate as `::kiln`, which works in user crates
//! and in kiln's own tests and examples; inside kiln itself `extern crate self as kiln`
//! makes the same path resolve.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Fields, Index};

/// Implements `kiln::nn::Module` for a struct from its fields. See the crate docs.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let StructKeys {
        stateless,
        extra_repr,
    } = struct_keys(input)?;
    let fields =
        match &input.data {
            Data::Struct(data) => &data.fields,
            Data::Enum(data) => return Err(syn::Error::new_spanned(
                data.enum_token,
                "#[derive(Module)] supports structs only; wrap the variants' modules in a struct",
            )),
            Data::Union(data) => {
                return Err(syn::Error::new_spanned(
                    data.union_token,
                    "#[derive(Module)] supports structs only",
                ))
            }
        };

    let mut visits = Vec::new();
    let mut bounded_types = Vec::new();
    let mut keeps_mode = false;
    let members: Vec<_> = match fields {
        Fields::Named(named) => named.named.iter().collect(),
        Fields::Unnamed(unnamed) => unnamed.unnamed.iter().collect(),
        Fields::Unit => Vec::new(),
    };
    for (position, field) in members.into_iter().enumerate() {
        if is_skipped(field)? {
            continue;
        }
        let (access, name) = match &field.ident {
            Some(ident) => (quote!(#ident), ident_name(ident)),
            None => {
                let index = Index::from(position);
                (quote!(#index), position.to_string())
            }
        };
        // Spanned at the field's type so a field that is not a ModuleField is
        // reported at the field, not at the derive.
        let ty = &field.ty;
        keeps_mode |= can_keep_mode(ty);
        visits.push(quote_spanned! {ty.span()=>
            <#ty as ::kiln::nn::ModuleField>::visit_field(&self.#access, #name, visitor);
        });
        bounded_types.push(field.ty.clone());
    }

    let ident = &input.ident;
    if !keeps_mode && !stateless {
        return Err(syn::Error::new_spanned(
            ident,
            format!(
                "`{ident}` has nowhere to keep its train/eval mode (no nn::Mode field, no child \
                 module, no nn::Parameter or nn::Buffer), so is_training() could not follow \
                 eval(); add a field `mode: nn::Mode` (initialised with nn::Mode::default()), or \
                 mark the struct #[module(stateless)] if it behaves the same in both modes and \
                 never asks is_training()"
            ),
        ));
    }
    let mut generics = input.generics.clone();
    if !generics.params.is_empty() {
        // Only generic structs need bounds; a concrete field type that is not a
        // ModuleField already fails with the trait's own message.
        let where_clause = generics.make_where_clause();
        for ty in &bounded_types {
            where_clause
                .predicates
                .push(syn::parse_quote!(#ty: ::kiln::nn::ModuleField));
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let lifetime = syn::Lifetime::new("'__kiln_visit", proc_macro2::Span::call_site());
    let type_name = ident_name(ident);
    let extra_repr = extra_repr.then(|| {
        quote! {
            fn extra_repr(&self) -> ::std::string::String {
                #ident::extra_repr(self)
            }
        }
    });
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::kiln::nn::Module for #ident #ty_generics #where_clause {
            fn visit<#lifetime>(
                &#lifetime self,
                visitor: &mut dyn ::core::ops::FnMut(&str, ::kiln::nn::Member<#lifetime>),
            ) {
                let _ = &visitor;
                #(#visits)*
            }

            fn type_name(&self) -> ::std::string::String {
                ::std::string::String::from(#type_name)
            }

            #extra_repr
        }
    })
}

/// The field name as PyTorch would see it (`r#type` → `type`).
fn ident_name(ident: &syn::Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// True for a field marked `#[module(skip)]`; any other `#[module(..)]` key is an error.
fn is_skipped(field: &syn::Field) -> syn::Result<bool> {
    let mut skip = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("unknown #[module(..)] key; the only one is `skip`"))
            }
        })?;
    }
    Ok(skip)
}

/// The struct-level `#[module(..)]` keys.
struct StructKeys {
    /// `stateless`: the struct keeps no mode (see the crate docs).
    stateless: bool,
    /// `extra_repr`: the struct has an inherent `fn extra_repr(&self) -> String`
    /// that `Module::extra_repr` returns (the arguments `nn::summary` prints).
    extra_repr: bool,
}

/// Reads the struct-level keys; any other key is an error (`skip` belongs on fields).
fn struct_keys(input: &DeriveInput) -> syn::Result<StructKeys> {
    let mut keys = StructKeys {
        stateless: false,
        extra_repr: false,
    };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("stateless") {
                keys.stateless = true;
                Ok(())
            } else if meta.path.is_ident("extra_repr") {
                keys.extra_repr = true;
                Ok(())
            } else {
                Err(meta.error(
                    "unknown struct-level #[module(..)] key; the keys are `stateless` and \
                     `extra_repr` (#[module(skip)] belongs on fields)",
                ))
            }
        })?;
    }
    Ok(keys)
}

/// Type names that can hold no mode: the built-in unit and configuration-only
/// layers, and the plain configuration values `ModuleField` accepts.
const MODE_LESS: &[&str] = &[
    "ReLU",
    "GELU",
    "LeakyReLU",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "bool",
    "u8",
    "u16",
    "u32",
    "u64",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "isize",
    "f32",
    "f64",
    "String",
    "Device",
    "DType",
    "PhantomData",
];

/// True when a field of type `ty` may keep a mode: anything but the types in
/// [`MODE_LESS`], tuples, and `Vec`/`Option`/`Box`/arrays/references of those.
fn can_keep_mode(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Tuple(_) => false,
        syn::Type::Array(a) => can_keep_mode(&a.elem),
        syn::Type::Reference(r) => can_keep_mode(&r.elem),
        syn::Type::Paren(p) => can_keep_mode(&p.elem),
        syn::Type::Group(g) => can_keep_mode(&g.elem),
        syn::Type::Path(p) => {
            let Some(last) = p.path.segments.last() else {
                return true;
            };
            let name = last.ident.to_string();
            if ["Vec", "Option", "Box"].contains(&name.as_str()) {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(inner)) = args.args.first() {
                        return can_keep_mode(inner);
                    }
                }
            }
            !MODE_LESS.contains(&name.as_str())
        }
        _ => true,
    }
}
