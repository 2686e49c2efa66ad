// tokenprobe_make_rwkv_vocab_gguf rwkv_vocab_v20230424.txt OUT.gguf [VOCAB_SIZE]
// Writes the vocabulary-only GGUF llama.cpp's converter would make of RWKV's world
// vocabulary (rwkv_vocab_gguf.h), for the reference llama-tokenize.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "rwkv_vocab/rwkv_vocab_gguf.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s rwkv_vocab_v20230424.txt OUT.gguf [VOCAB_SIZE (default %d)]\n", argv[0],
                 tp::rwkv_vocab::kWorldVocabSize);
    return 2;
  }
  try {
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) throw tp::Error(tp::ErrorKind::Io, argv[1], "cannot open the RWKV vocabulary");
    std::stringstream ss;
    ss << in.rdbuf();
    int32_t vocab_size = tp::rwkv_vocab::kWorldVocabSize;
    if (argc == 4) vocab_size = static_cast<int32_t>(std::stol(argv[3]));
    tp::rwkv_vocab::world_vocab_gguf(ss.str(), argv[1], vocab_size).write(argv[2]);
  } catch (const tp::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // std::stol on a VOCAB_SIZE that is no number
    std::fprintf(stderr, "error: VOCAB_SIZE '%s': %s\n", argv[3], e.what());
    return 2;
  }
  return 0;
}
