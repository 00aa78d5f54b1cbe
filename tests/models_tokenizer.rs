//! kiln::models::Tokenizer against the Python `tokenizers` library: the byte-level BPE
//! of tests/data/hf/gpt2/tokenizer.json (trained by scripts/golden/hf_models.py) gives
//! the ids recorded in tokenizer_cases.json for every string (ASCII, whitespace,
//! Unicode, empty, a special token), and decoding gives the text back.

use kiln::models::Tokenizer;
use kiln::Error;

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf/gpt2")
}

#[test]
fn encodes_as_the_python_library_and_decodes_back() {
    let tok = Tokenizer::from_file(dir().join("tokenizer.json")).unwrap();
    assert_eq!(tok.vocab_size(), 320);
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("tokenizer_cases.json")).unwrap())
            .unwrap();
    let special = tok.token_to_id("<|endoftext|>").unwrap();
    for case in cases.as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids, want, "{text:?}");
        // Decoding skips the special token, as decode(ids, skip_special_tokens=True).
        assert_eq!(
            tok.decode(&ids).unwrap(),
            text.replace("<|endoftext|>", ""),
            "{text:?}"
        );
        assert_eq!(ids.contains(&special), text.contains("<|endoftext|>"));
    }
}

#[test]
fn bad_files_and_ids_are_errors() {
    assert!(matches!(
        Tokenizer::from_file(dir().join("absent.json")),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        Tokenizer::from_file(dir().join("config.json")),
        Err(Error::Checkpoint { .. })
    ));
    let tok = Tokenizer::from_file(dir().join("tokenizer.json")).unwrap();
    match tok.decode(&[5, 320]) {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "ids"),
        other => panic!("expected an invalid `ids`, got {other:?}"),
    }
}
