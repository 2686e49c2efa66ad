// llamacpp_dump [--all-nodes] MODEL OUT_DIR N_GREEDY ID...: runs the reference llama.cpp on the token ids
// (one batch, F32 compute on the CPU, every position's logits) and writes what tokenprobe's
// reference tests compare against, in the layout of ../shared/reference (README there):
//   tokens.json    {"tokens": [...], "greedy": [N_GREEDY ids decoded one token at a time]}
//   logits.npy     [pos, d_vocab]
//   NAME.npy       every F32 or I32 tensor the graph names (attn_norm-L, ffn_inp-L, l_out-L,
//                  ffn_moe_argsort-L, ...), I32 ones as floats
//   wkv6-L.npy     RWKV-6: the WKV readout [pos, d_model] (before the group norm) and
//   wkv6_state-L.npy  the state after the last position [heads, head_size, head_size]
//   wkv7-L.npy, wkv7_state-L.npy  the same for RWKV-7 (ggml's layout: its state is
//                  [heads, head_size (value), head_size (key)], the transpose of RWKV-6's)
//   nodes/NNNN-OP-NAME.npy  with --all-nodes: every contiguous F32 node of the prompt pass in
//                  graph order (NNNN), its op and name (unnamed ones are ggml's "node_N"), in
//                  ggml's dimension order reversed; for finding the first op where tokenprobe
//                  and llama.cpp part (docs/numerics.md)
// Built against the reference build by scripts/llamacpp-reference; not part of tokenprobe.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

namespace {

std::string out_dir;
bool all_nodes = false;
int node_count = 0;
int wkv_count = 0;  // RWKV_WKV6 / RWKV_WKV7 nodes come in layer order

void write_npy(const std::string& name, const float* data, const std::vector<long>& shape) {
  std::string dims;
  for (long d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(out_dir + "/" + name + ".npy", std::ios::binary);
  const unsigned short len = static_cast<unsigned short>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&len), 2);
  f << header;
  long n = 1;
  for (long d : shape) n *= d;
  f.write(reinterpret_cast<const char*>(data), n * sizeof(float));
}

// F32 as it is; I32 (a mixture of experts' ffn_moe_argsort: expert ids, most probable
// first) as floats, exact for ids below 2^24.
std::vector<float> fetch(ggml_tensor* t) {
  std::vector<float> v(ggml_nelements(t));
  if (t->type == GGML_TYPE_I32) {
    std::vector<int32_t> ids(v.size());
    ggml_backend_tensor_get(t, ids.data(), 0, ids.size() * sizeof(int32_t));
    for (size_t i = 0; i < ids.size(); ++i) v[i] = float(ids[i]);
    return v;
  }
  ggml_backend_tensor_get(t, v.data(), 0, v.size() * sizeof(float));
  return v;
}

// A node name as a file name: spaces and path characters become '_'.
std::string file_name(const char* name) {
  std::string s = name;
  for (char& c : s)
    if (c == ' ' || c == '/' || c == '(' || c == ')') c = '_';
  return s;
}

// Whether --all-nodes writes a node: one that computes something (not a view, reshape or
// copy, whose values are another node's) and does not read the recurrent state's cache
// (those nodes gather the state rows of sequences that the batch may not have).
bool computes(const ggml_tensor* t) {
  switch (t->op) {
    case GGML_OP_VIEW: case GGML_OP_RESHAPE: case GGML_OP_PERMUTE: case GGML_OP_TRANSPOSE: case GGML_OP_CPY: return false;
    default: break;
  }
  for (int i = 0; i < GGML_MAX_SRC && t->src[i]; ++i)
    if (std::strncmp(t->src[i]->name, "cache_", 6) == 0) return false;
  return std::strncmp(t->name, "cache_", 6) != 0;
}

// Keeps the prompt pass's named F32 tensors and the WKV nodes (every F32 node with
// --all-nodes); ignores the decode passes.
bool observe(ggml_tensor* t, bool ask, void*) {
  const bool wkv = t->op == GGML_OP_RWKV_WKV6 || t->op == GGML_OP_RWKV_WKV7;
  const bool named = t->name[0] && std::strchr(t->name, '-') && !std::strchr(t->name, ' ') && (t->type == GGML_TYPE_F32 || t->type == GGML_TYPE_I32) &&
                     ggml_is_contiguous(t);
  const bool node = all_nodes && t->type == GGML_TYPE_F32 && ggml_is_contiguous(t) && computes(t);
  if (ask) return out_dir.size() && (wkv || named || node);
  if (node) {
    char index[16];
    std::snprintf(index, sizeof index, "%04d", node_count++);
    std::vector<long> shape;
    for (int d = GGML_MAX_DIMS - 1; d >= 0; --d)
      if (t->ne[d] > 1 || !shape.empty()) shape.push_back(t->ne[d]);
    if (shape.empty()) shape.push_back(1);
    const std::vector<float> v = fetch(t);
    write_npy(std::string("nodes/") + index + "-" + ggml_op_desc(t) + "-" + file_name(t->name), v.data(), shape);
  }
  if (wkv) {
    const long n = t->src[0]->ne[0], heads = t->src[0]->ne[1], T = t->src[0]->ne[2], C = n * heads;
    const std::vector<float> v = fetch(t);
    const std::string L = std::to_string(wkv_count++), op = t->op == GGML_OP_RWKV_WKV6 ? "wkv6" : "wkv7";
    write_npy(op + "-" + L, v.data(), {T, C});
    write_npy(op + "_state-" + L, v.data() + T * C, {heads, n, n});
  } else if (named) {
    const std::vector<float> v = fetch(t);
    std::vector<long> shape;
    for (int d = GGML_MAX_DIMS - 1; d >= 0; --d)
      if (t->ne[d] > 1 || !shape.empty()) shape.push_back(t->ne[d]);
    // [n_embd, 1, T] style shapes keep their size-1 middle axes out.
    std::vector<long> tight;
    for (long d : shape)
      if (d > 1) tight.push_back(d);
    write_npy(t->name, v.data(), tight.empty() ? std::vector<long>{1} : tight);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--all-nodes") == 0) {
    all_nodes = true;
    --argc;
    ++argv;
  }
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s [--all-nodes] MODEL OUT_DIR N_GREEDY ID...\n", argv[0]);
    return 2;
  }
  std::vector<llama_token> ids;
  for (int i = 4; i < argc; ++i) ids.push_back(std::atoi(argv[i]));
  const int n_greedy = std::atoi(argv[3]);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  // No repacked or AMX weight buffers: on a CPU that reports AMX to a guest whose kernel
  // does not enable its tile state, ggml's AMX kernels die with SIGILL on every quantised
  // model; the plain CPU kernels compute the same products.
  mp.use_extra_bufts = false;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = 1;
  cp.cb_eval = observe;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = cp.type_v = GGML_TYPE_F32;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

  out_dir = argv[2];
  if (all_nodes) std::filesystem::create_directories(out_dir + "/nodes");
  llama_batch b = llama_batch_init(int(ids.size()), 0, 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    b.token[i] = ids[i];
    b.pos[i] = int(i);
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = 0;
    b.logits[i] = 1;
  }
  b.n_tokens = int(ids.size());
  if (llama_decode(ctx, b)) return 1;
  std::vector<float> logits;
  for (size_t i = 0; i < ids.size(); ++i) {
    const float* row = llama_get_logits_ith(ctx, int(i));
    logits.insert(logits.end(), row, row + n_vocab);
  }
  write_npy("logits", logits.data(), {long(ids.size()), long(n_vocab)});
  const std::string dir = out_dir;
  out_dir.clear();

  // Greedy continuation from the state, one token at a time.
  std::vector<llama_token> greedy;
  const float* last = llama_get_logits_ith(ctx, int(ids.size()) - 1);
  for (int g = 0; g < n_greedy; ++g) {
    llama_token best = 0;
    for (int v = 1; v < n_vocab; ++v)
      if (last[v] > last[best]) best = v;
    greedy.push_back(best);
    llama_batch one = llama_batch_get_one(&greedy.back(), 1);
    if (llama_decode(ctx, one)) return 1;
    last = llama_get_logits_ith(ctx, -1);
  }
  std::ofstream js(dir + "/tokens.json");
  js << "{\"tokens\": [";
  for (size_t i = 0; i < ids.size(); ++i) js << (i ? ", " : "") << ids[i];
  js << "], \"greedy\": [";
  for (size_t i = 0; i < greedy.size(); ++i) js << (i ? ", " : "") << greedy[i];
  js << "]}\n";
  llama_batch_free(b);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
