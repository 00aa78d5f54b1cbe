"""Hugging Face checkpoints for kiln::models: small GPT-2 and Llama-family models
created by `transformers` from configs with random weights (nothing is downloaded),
saved in the hub's layout, with the logits and greedy continuations that
`transformers` computes for them.

Run: .venv/bin/python scripts/golden/hf_models.py  (transformers pinned in
scripts/requirements-torch.txt). Writes, under tests/data/hf/:

  gpt2/           GPT2LMHeadModel (tied head): config.json, model.safetensors,
                  tokenizer.json (a byte-level BPE of 320 tokens trained on data/kjv)
  llama/          LlamaForCausalLM, untied head, GQA (4 heads, 2 kv heads), saved in
                  shards (model-0000N-of-0000M.safetensors + model.safetensors.index.json)
  llama3_tied/    LlamaForCausalLM, tied head, rope_type llama3 (theta 500000)
  qwen2/          Qwen2ForCausalLM (q/k/v biases), rope_type linear (factor 2)
  <name>/expected.safetensors   what transformers computes (not read by transformers):
      ids (2, 12) I64, logits (2, 12, vocab) f32       model(ids).logits
      greedy.prompt (1, 5), greedy.out (1, 5 + 12)   generate(prompt, do_sample=False,
                                                     max_new_tokens=12)
      batch.ids (2, 7) left-padded with 0, batch.mask (2, 7), batch.out (2, 7 + 10):
          generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=10,
                   eos_token_id=batch.eos, pad_token_id=0), batch.eos a () I64 tensor
                   (a token that the unstopped continuation of row 0 emits from
                   its 3rd new token on, so row 0 stops early and is padded)
  gpt2/tokenizer_cases.json  strings with their ids from tokenizers' encode

The kiln side also writes a fine-tuned GPT-2 in the hub's format
(tests/data/hf/gpt2_kiln/, by `KILN_WRITE_HUB_FIXTURE=1 cargo test --test
models_hf kiln_written`); when that folder exists, this script loads it with
GPT2LMHeadModel.from_pretrained (strict: no missing or unexpected keys) and stores
its logits of `ids` in gpt2_kiln/expected.safetensors, which the kiln test compares
with its own model's.

Weights are drawn with initializer_range 0.2 so that the logits are spread out, and
every greedy step's top-two logit margin is checked to exceed 1e-3, so kiln's greedy
tokens cannot differ from these by a float rounding.
"""

import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)
from transformers.utils import logging

logging.set_verbosity_error()
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
HF = os.path.join(ROOT, "tests", "data", "hf")
VOCAB = 320


def min_margin(model, out, prompt_len):
    """The smallest top-1 minus top-2 logit gap over the generated steps of `out`."""
    with torch.no_grad():
        logits = model(out).logits[:, prompt_len - 1:-1]
    top = logits.topk(2, dim=-1).values
    return (top[..., 0] - top[..., 1]).min().item()


def record(name, model, gen_eos_search=True):
    """Saves `model` under tests/data/hf/<name>/ and its expected.safetensors."""
    d = os.path.join(HF, name)
    shutil.rmtree(d, ignore_errors=True)
    shard = name == "llama"
    model.save_pretrained(d, max_shard_size="40KB" if shard else "1GB")
    g = torch.Generator().manual_seed(7)
    exp = {}
    ids = torch.randint(1, VOCAB, (2, 12), generator=g)
    with torch.no_grad():
        exp["ids"], exp["logits"] = ids, model(ids).logits
    prompt = torch.randint(1, VOCAB, (1, 5), generator=g)
    out = model.generate(prompt, do_sample=False, max_new_tokens=12, eos_token_id=None,
                         pad_token_id=0)
    assert min_margin(model, out, 5) > 1e-3, name
    exp["greedy.prompt"], exp["greedy.out"] = prompt, out
    # Two prompts of lengths 4 and 7, left-padded with 0.
    a, b = torch.randint(1, VOCAB, (4,), generator=g), torch.randint(1, VOCAB, (7,), generator=g)
    bids = torch.zeros(2, 7, dtype=torch.long)
    bids[0, 3:], bids[1] = a, b
    mask = (bids != 0).long()
    free = model.generate(bids, attention_mask=mask, do_sample=False, max_new_tokens=10,
                          eos_token_id=None, pad_token_id=0)
    # Row 0 stops at the first of its new tokens from the 3rd on that it has not emitted before.
    new = free[0, 7:].tolist()
    eos = next(t for k, t in enumerate(new) if k >= 2 and t not in new[:k] and t != 0)
    out = model.generate(bids, attention_mask=mask, do_sample=False, max_new_tokens=10,
                         eos_token_id=eos, pad_token_id=0)
    exp.update({"batch.ids": bids, "batch.mask": mask, "batch.out": out,
                "batch.eos": torch.tensor(eos)})
    for row in range(2):
        n = 7 - int(mask[row].sum())
        assert min_margin(model, free[row:row + 1, n:], 7 - n) > 1e-3, name
    save_file({k: v.contiguous() for k, v in exp.items()}, os.path.join(d, "expected.safetensors"))
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"wrote {d} ({size} bytes)")


def tokenizer(d):
    """A byte-level BPE (GPT-2's scheme) of VOCAB tokens trained on the KJV text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    with open(os.path.join(ROOT, "data", "kjv", "pentateuch.txt")) as f:
        lines = f.read().splitlines()
    tok.train_from_iterator(lines, trainer)
    tok.save(os.path.join(d, "tokenizer.json"))
    cases = ["In the beginning God created the heaven and the earth.",
             "  two spaces, tabs\tand\nnewlines", "Ünïcödé ✓ 漢字", "", "<|endoftext|>Amen."]
    with open(os.path.join(d, "tokenizer_cases.json"), "w") as f:
        json.dump([{"text": t, "ids": tok.encode(t).ids} for t in cases], f, indent=1)
    assert tok.get_vocab_size() == VOCAB


def kiln_written():
    """Loads kiln's fine-tuned GPT-2 with transformers and records its logits."""
    d = os.path.join(HF, "gpt2_kiln")
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        print(f"{d} not written yet (KILN_WRITE_HUB_FIXTURE=1 cargo test --test models_hf kiln_written)")
        return
    model, info = GPT2LMHeadModel.from_pretrained(d, output_loading_info=True)
    assert not any(info.values()), info
    ids = torch.randint(1, VOCAB, (2, 12), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        logits = model.eval()(ids).logits
    save_file({"ids": ids, "logits": logits}, os.path.join(d, "expected.safetensors"))
    print(f"recorded transformers' logits of {d}")


def main():
    torch.manual_seed(2028)
    common = dict(vocab_size=VOCAB, initializer_range=0.2, bos_token_id=1, eos_token_id=2)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_positions=64, n_embd=32, n_layer=2, n_head=4, **common)).eval()
    record("gpt2", gpt2)
    tokenizer(os.path.join(HF, "gpt2"))
    small = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64, **common)
    record("llama", LlamaForCausalLM(LlamaConfig(rms_norm_eps=1e-5, **small)).eval())
    llama3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    record("llama3_tied", LlamaForCausalLM(LlamaConfig(tie_word_embeddings=True, rope_parameters=llama3,
                                                       **small)).eval())
    linear = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}
    record("qwen2", Qwen2ForCausalLM(Qwen2Config(rope_parameters=linear, **small)).eval())
    kiln_written()


if __name__ == "__main__":
    main()
