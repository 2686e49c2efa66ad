// ggml_blocks TYPE [decode-only]: the reference ggml's encoding and decoding of one block type,
// as JSON on stdout, for tests/data/ggml-blocks (its README says how it was made and what the
// tests check). Seeded rows of floats go through ggml_quantize_chunk without an importance
// matrix (what llama-quantize runs), and seeded random blocks through the type's to_float.
// decode-only (the grid i-quants, which tokenprobe reads but does not write) leaves out the
// floats and their encoding.
// Build against the reference checkout (LLAMA = ~/.cache/tokenprobe-ref/llama.cpp):
//   cc -O2 -o ggml_blocks tools/reference/ggml_blocks.c -I$LLAMA/ggml/include
//      -L$LLAMA/build/bin -lggml-base -lm -Wl,-rpath,$LLAMA/build/bin   (one line)
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"

static uint64_t state = 0x2545F4914F6CDD1DULL;
static uint32_t next_u32(void) {  // xorshift64*
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return (uint32_t)((state * 0x2545F4914F6CDD1DULL) >> 32);
}
static float uniform(void) { return ((float)next_u32() + 0.5f) / 4294967296.0f; }
static float normal(void) { return sqrtf(-2.0f * logf(uniform())) * cosf(6.2831853f * uniform()); }

static void print_floats(const char* key, const float* v, int64_t n) {
  printf("\"%s\": [", key);
  for (int64_t i = 0; i < n; ++i) printf("%s%.9g", i ? ", " : "", (double)v[i]);
  printf("]");
}
static void print_hex(const char* key, const uint8_t* b, size_t n) {
  printf("\"%s\": \"", key);
  for (size_t i = 0; i < n; ++i) printf("%02x", b[i]);
  printf("\"");
}

int main(int argc, char** argv) {
  const int decode_only = argc == 3 && strcmp(argv[2], "decode-only") == 0;
  if (argc != 2 && !decode_only) {
    fprintf(stderr, "usage: ggml_blocks TYPE [decode-only] (TYPE a ggml type name, e.g. iq4_nl)\n");
    return 2;
  }
  enum ggml_type type = GGML_TYPE_COUNT;
  for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
    const char* name = ggml_type_name((enum ggml_type)t);
    if (name && strcmp(name, argv[1]) == 0) type = (enum ggml_type)t;
  }
  if (type == GGML_TYPE_COUNT) {
    fprintf(stderr, "unknown type %s\n", argv[1]);
    return 2;
  }
  const int64_t n = 512, rows = 6, blk = ggml_blck_size(type);
  const size_t row_size = ggml_row_size(type, n);
  float* x = malloc(sizeof(float) * n * rows);
  // Rows: normal; normal with one large outlier per 64; tiny values; a row with zero blocks;
  // a row of small integers (many ties to the table); uniform in [-1, 1].
  for (int64_t i = 0; i < n; ++i) {
    x[0 * n + i] = 0.02f * normal();
    x[1 * n + i] = i % 64 == 7 ? 0.5f * normal() : 0.02f * normal();
    x[2 * n + i] = 1e-6f * normal();
    x[3 * n + i] = (i / 32) % 3 == 1 ? 0.0f : normal();
    x[4 * n + i] = (float)((int)(next_u32() % 17) - 8);
    x[5 * n + i] = 2.0f * uniform() - 1.0f;
  }
  uint8_t* q = malloc(row_size * rows);
  if (!decode_only) ggml_quantize_chunk(type, x, q, 0, rows, n, NULL);

  // Random blocks: random bytes, then each block's scale field set to a small value of
  // either sign (a random fp16 may be infinite or NaN; an E8M0 byte of 255 is NaN).
  const int64_t nr = 4 * blk;
  const size_t rr = ggml_row_size(type, nr), bb = ggml_type_size(type);
  uint8_t* r = malloc(rr);
  for (size_t i = 0; i < rr; ++i) r[i] = (uint8_t)next_u32();
  for (size_t b = 0; b < rr / bb; ++b) {
    uint8_t* p = r + b * bb;
    if (type == GGML_TYPE_MXFP4) {
      p[0] = (uint8_t)(110 + next_u32() % 20);
      continue;
    }
    const ggml_fp16_t h = ggml_fp32_to_fp16((next_u32() & 1 ? -1.0f : 1.0f) * (0.001f + 0.01f * uniform()));
    if (type == GGML_TYPE_IQ1_M) {  // d's four nibbles are the top nibbles of the uint16 scales at 48
      uint16_t sc[4];
      memcpy(sc, p + 48, 8);
      for (int k = 0; k < 4; ++k) sc[k] = (uint16_t)((sc[k] & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
      memcpy(p + 48, sc, 8);
      continue;
    }
    const size_t at = type == GGML_TYPE_TQ1_0 ? 52 : type == GGML_TYPE_TQ2_0 ? 64 : 0;
    memcpy(p + at, &h, 2);
  }
  float* y = malloc(sizeof(float) * nr);
  ggml_get_type_traits(type)->to_float(r, y, nr);

  printf("{\"type\": \"%s\", \"n_per_row\": %lld, \"rows\": %lld,\n", argv[1], (long long)n, (long long)rows);
  if (!decode_only) {
    print_floats("floats", x, n * rows);
    printf(",\n");
    print_hex("quantized", q, row_size * rows);
    printf(",\n");
  }
  print_hex("random_blocks", r, rr);
  printf(",\n");
  print_floats("random_blocks_decoded", y, nr);
  printf("}\n");
  return 0;
}
