#!/usr/bin/env python3
# Helpers of scripts/check-convert-llamacpp for the tokenizer check (standard library only):
#   folder TOKDIR OUT [BOS]  a tiny LLaMA folder (1 layer, d_model 8, zero weights) around TOKDIR's
#                         tokenizer.json (+ tokenizer_config.json): enough for `tokenprobe convert`
#                         and llama.cpp to read the vocabulary; vocab_size is the tokenizer's,
#                         rounded up to 128 as real models pad it. BOS (a token text): the
#                         post-processor adds it, as Meta's Llama 3 tokenizer.json does since its
#                         2024 update (the npm copy has the original ByteLevel post-processor).
#   texts VECTORS         each case's text of a tests/data/hf-tokenizers/*.json file, one hex line each
#   compare VECTORS IDS [BOS_ID]  prints "agree/all" of llama.cpp's ids (IDS: one line per case) against the
#                         file's ids_special (HF's encode(), after BOS_ID when given), and the first disagreements; exit 1 if any
import json, os, shutil, struct, sys

def folder(tokdir, out, bos=None):
    os.makedirs(out, exist_ok=True)
    tok = json.load(open(os.path.join(tokdir, "tokenizer.json"), encoding="utf-8"))
    if bos:
        bos_id = next(t["id"] for t in tok["added_tokens"] if t["content"] == bos)
        tok["post_processor"] = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}]}
    ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]
    n_vocab = (max(ids) + 1 + 127) // 128 * 128
    d, ff = 8, 16
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d, "intermediate_size": ff,
              "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "max_position_embeddings": 64, "vocab_size": n_vocab, "tie_word_embeddings": True,
              "torch_dtype": "float32", "hidden_act": "silu"}
    json.dump(config, open(os.path.join(out, "config.json"), "w"))
    shapes = {"model.embed_tokens.weight": [n_vocab, d], "model.norm.weight": [d],
              "model.layers.0.input_layernorm.weight": [d], "model.layers.0.post_attention_layernorm.weight": [d]}
    for p in "qkvo":
        shapes[f"model.layers.0.self_attn.{p}_proj.weight"] = [d, d]
    shapes.update({"model.layers.0.mlp.gate_proj.weight": [ff, d], "model.layers.0.mlp.up_proj.weight": [ff, d],
                   "model.layers.0.mlp.down_proj.weight": [d, ff]})
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * shape[0] * (shape[1] if len(shape) > 1 else 1)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + offset)
    json.dump(tok, open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    if os.path.exists(os.path.join(tokdir, "tokenizer_config.json")):
        shutil.copy(os.path.join(tokdir, "tokenizer_config.json"), out)

def texts(vectors):
    for case in json.load(open(vectors, encoding="utf-8"))["cases"]:
        print(case["text"].encode("utf-8").hex())

def compare(vectors, ids_file, bos_id=None):
    cases = json.load(open(vectors, encoding="utf-8"))["cases"]
    for c in cases:
        c["ids_special"] = ([int(bos_id)] if bos_id else []) + c["ids_special"]
    got = [[int(x) for x in line.split()] for line in open(ids_file).read().split("\n")[: len(cases)]]
    bad = [(c, g) for c, g in zip(cases, got) if c["ids_special"] != g]
    print(f"{len(cases) - len(bad)}/{len(cases)}")
    for c, g in bad[:3]:
        want = c["ids_special"]
        i = next((k for k in range(min(len(want), len(g))) if want[k] != g[k]), min(len(want), len(g)))
        text = c["text"] if len(c["text"]) <= 40 else c["text"][:40] + "..."
        print(f"  {text!r}: from id {i}: HF {want[i:i + 6]} llama.cpp {g[i:i + 6]}")
    sys.exit(1 if bad or len(got) != len(cases) else 0)

if __name__ == "__main__":
    {"folder": folder, "texts": texts, "compare": compare}[sys.argv[1]](*sys.argv[2:])
