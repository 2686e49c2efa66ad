// `tokenprobe bench -m MODEL --parallel 1,4,8`: what `serve --parallel N` gives N concurrent
// clients, measured over HTTP against an in-process server on a free local port: the
// throughput of N generations at once, and the latency of a cheap request (a 1-token
// completion) sent while they run.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tp::cli {

// For each n in `clients`: a server with --parallel n, n clients each generating n_gen tokens
// (greedy, end-of-generation ignored) from their own 16-token prompt, `runs` times (the
// median reported); then a server with n + 1 slots (one free), the same n generating again,
// and a 1-token completion sent once each has its first token: its wall time. On `threads`
// worker threads (0 = one per core).
nlohmann::json parallel_bench(const std::string& model_path, const std::vector<int>& clients, int n_gen, int threads, int runs);
// The table rows of such a result (markdown, with the header first).
std::string parallel_rows(const nlohmann::json& r);

}  // namespace tp::cli
