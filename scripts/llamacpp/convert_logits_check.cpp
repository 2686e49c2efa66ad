// Built and run by scripts/check-convert-llamacpp against the reference llama.cpp (never part of
// tokenprobe's build): loads MODEL.gguf with libllama, decodes the prompt ids with F32 compute,
// an F32 KV cache and flash attention off (as ../shared/reference was made), and prints the
// max |Δ| of every position's logits against REF.npy ([pos, d_vocab] float32).
// usage: convert_logits_check MODEL.gguf IDS(comma-separated) REF.npy
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

namespace {

// A little-endian float32 .npy in C order: the data follows the header.
std::vector<float> read_npy_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  if (bytes.size() < 10 || bytes.compare(1, 5, "NUMPY") != 0) return {};
  const size_t header_len = bytes[6] == 1 ? size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8
                                          : size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8 | size_t(uint8_t(bytes[10])) << 16;
  const size_t start = (bytes[6] == 1 ? 10 : 12) + header_len;
  if (bytes.find("'<f4'", 0) == std::string::npos || start > bytes.size()) return {};
  std::vector<float> out((bytes.size() - start) / 4);
  std::memcpy(out.data(), bytes.data() + start, out.size() * 4);
  return out;
}

void quiet(ggml_log_level, const char*, void*) {}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s MODEL.gguf IDS REF.npy\n", argv[0]);
    return 2;
  }
  std::vector<llama_token> ids;
  std::stringstream list(argv[2]);
  for (std::string item; std::getline(list, item, ',');) ids.push_back(std::atoi(item.c_str()));
  const std::vector<float> ref = read_npy_f32(argv[3]);
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (!model) {
    std::fprintf(stderr, "llama.cpp cannot load %s\n", argv[1]);
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 256, cp.n_batch = 256, cp.n_ubatch = 256;
  cp.type_k = GGML_TYPE_F32, cp.type_v = GGML_TYPE_F32;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  llama_batch batch = llama_batch_init(int32_t(ids.size()), 0, 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.token[i] = ids[i], batch.pos[i] = int32_t(i), batch.n_seq_id[i] = 1, batch.seq_id[i][0] = 0, batch.logits[i] = 1;
  }
  batch.n_tokens = int32_t(ids.size());
  if (!ctx || llama_decode(ctx, batch) != 0 || ref.size() != ids.size() * size_t(n_vocab)) {
    std::fprintf(stderr, "decode failed or %s holds %zu values, not %zu x %d\n", argv[3], ref.size(), ids.size(), n_vocab);
    return 1;
  }
  double max_diff = 0;
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* logits = llama_get_logits_ith(ctx, int32_t(p));
    for (int v = 0; v < n_vocab; ++v) max_diff = std::fmax(max_diff, std::fabs(double(logits[v]) - ref[p * n_vocab + v]));
  }
  std::printf("%.3g\n", max_diff);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
