// Which files of a repository a request needs, from the repository's file list: the files a
// model folder is made of, the weight shards an index names, and the GGUF of a quantisation.
// Pure functions of the listing, so that the same choice is made online (the Hub's list) and
// offline (the cached snapshot's files).
#pragma once
#include <string>
#include <vector>

namespace tp::hub {

// The top-level files a model folder needs, in download order: configuration and tokenizer
// files that are there, then the weights, in the first form the repository has:
// model.safetensors.index.json (its shards: index_shards), model.safetensors,
// pytorch_model.bin.index.json, pytorch_model.bin, else every top-level *.safetensors.
// Empty when the repository holds none of them.
std::vector<std::string> model_folder_files(const std::vector<std::string>& listing);
bool is_weight_index(const std::string& file);  // *.safetensors.index.json, *.bin.index.json

// The shard files a weight index's "weight_map" names (each once, in order of first use).
// `where` names the index in errors; throws Error(Format) for an index that is not one, and
// Error(Usage)-style path errors for a shard name that could leave the snapshot folder.
std::vector<std::string> index_shards(const std::string& index_json, const std::string& where);

// The GGUF file(s) of a quantisation in a GGUF repository, llama.cpp's -hf choice: the tag
// (e.g. "q8_0"; empty: Q4_K_M, else the first .gguf) matched in the file name case-insensitively
// as a whole word; a split model's parts in order (-00001-of-0000N.gguf first, all N of them).
// Multimodal projectors (mmproj) are never the model. Throws HubError(EntryNotFound) listing the
// quantisations there are, when none matches. repo: for messages.
std::vector<std::string> pick_gguf(const std::vector<std::string>& listing, const std::string& quant,
                                   const std::string& repo);
// The quantisation tags found in GGUF file names ("Q4_K_M", "Q8_0", "F16"), each once.
std::vector<std::string> gguf_quants(const std::vector<std::string>& listing);

}  // namespace tp::hub
