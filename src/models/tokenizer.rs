//! [`Tokenizer`]: a Hugging Face `tokenizer.json` (GPT-2's byte-level BPE, Llama's
//! SentencePiece BPE, ...) read and run by the `tokenizers` crate (cargo feature
//! `tokenizers`).

use crate::{Error, Result};
use std::path::Path;

/// The tokenizer of a model folder: text to token ids and back, as `transformers`'
/// fast tokenizers compute them.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.vocab_size())
    }
}

impl Tokenizer {
    /// Reads a `tokenizer.json`. Err naming the path when it is missing or not a
    /// tokenizer.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Checkpoint {
            path: path.display().to_string(),
            msg: format!("not a tokenizer.json: {e}"),
        })?;
        Ok(Tokenizer { inner })
    }

    /// The ids of `text`, with the special tokens the tokenizer's post-processor adds
    /// (Llama's `<s>`; none for GPT-2), as `tokenizer(text)["input_ids"]`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::arg("text", format!("cannot be encoded: {e}")))
    }

    /// The text of `ids`, special tokens skipped, as
    /// `tokenizer.decode(ids, skip_special_tokens=True)`. Err naming `ids` for an id
    /// outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let n = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= n) {
            return Err(Error::arg(
                "ids",
                format!("id {bad} is outside the vocabulary of {n} tokens"),
            ));
        }
        self.inner
            .decode(ids, true)
            .map_err(|e| Error::arg("ids", format!("cannot be decoded: {e}")))
    }

    /// The number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of the token spelt `token` (e.g. `"<|endoftext|>"`), if any.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
