// llamacpp_parallel MODEL CLIENTS N_GEN THREADS RUNS: the reference llama.cpp decoding CLIENTS
// sequences of one context together, as llama-server --parallel CLIENTS does (one llama_decode
// per step with one token of every sequence), for `tokenprobe bench --parallel` to stand beside
// (scripts/bench-llamacpp-parallel). Each sequence's 16-token prompt has the ids
// (1 + 7919 (16 c + i + 1)) mod vocabulary of client c, as bench_parallel.cpp's; each prompt is
// decoded on its own (a request's prompt as the server runs it), then N_GEN greedy steps of all
// sequences. Prints the median wall seconds of RUNS and the tokens per second they give.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: llamacpp_parallel MODEL CLIENTS N_GEN THREADS RUNS\n");
    return 2;
  }
  const int clients = std::atoi(argv[2]), n_gen = std::atoi(argv[3]), threads = std::atoi(argv[4]), runs = std::atoi(argv[5]);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.use_extra_bufts = false;  // ggml's AMX buffers die on quantised files here (llamacpp_dump.cpp)
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  llama_context_params cp = llama_context_default_params();
  cp.n_seq_max = uint32_t(clients);
  cp.n_ctx = uint32_t(clients * (16 + n_gen + 16));
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = threads;
  cp.kv_unified = false;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) return 1;
  const int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  llama_batch b = llama_batch_init(std::max(16, clients), 0, 1);
  auto add = [&](llama_token id, int pos, int seq) {
    const int i = b.n_tokens++;
    b.token[i] = id;
    b.pos[i] = pos;
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = seq;
    b.logits[i] = 0;
  };
  auto argmax = [&](int i) {
    const float* row = llama_get_logits_ith(ctx, i);
    return llama_token(std::max_element(row, row + vocab) - row);
  };
  std::vector<double> wall;
  for (int r = 0; r < runs; ++r) {
    llama_memory_clear(llama_get_memory(ctx), true);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<llama_token> next(size_t(clients), 0);
    for (int c = 0; c < clients; ++c) {
      b.n_tokens = 0;
      for (int i = 0; i < 16; ++i) add(llama_token((1 + 7919ll * (16 * c + i + 1)) % vocab), i, c);
      b.logits[15] = 1;
      if (llama_decode(ctx, b)) return 1;
      next[size_t(c)] = argmax(15);
    }
    for (int step = 1; step < n_gen; ++step) {  // the prompt's logits chose the first token
      b.n_tokens = 0;
      for (int c = 0; c < clients; ++c) {
        add(next[size_t(c)], 16 + step - 1, c);
        b.logits[c] = 1;
      }
      if (llama_decode(ctx, b)) return 1;
      for (int c = 0; c < clients; ++c) next[size_t(c)] = argmax(c);
    }
    wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(wall.begin(), wall.end());
  const double s = wall[wall.size() / 2];
  std::printf("llama.cpp parallel %d: %d tokens each, %.3f s, %.2f t/s total\n", clients, n_gen, s, double(clients) * n_gen / s);
  llama_batch_free(b);
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
