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
    for attr in &input.attrs {
        if attr.path().is_ident("module") {
            return Err(syn::Error::new_spanned(
                attr,
                "#[module(..)] belongs on fields (#[module(skip)]), not on the struct",
            ));
        }
    }
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
        visits.push(quote_spanned! {ty.span()=>
            <#ty as ::kiln::nn::ModuleField>::visit_field(&self.#access, #name, visitor);
        });
        bounded_types.push(field.ty.clone());
    }

    let ident = &input.ident;
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
