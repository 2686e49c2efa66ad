// Steps every format reader shares (loader.cpp defines them): binding the architecture's
// declarations to a WeightStore and checking that a tokenizer fits the model.
#pragma once
#include <string>

#include "arch/architecture.h"
#include "runtime/model.h"

namespace tp {

// The model's logits and embedding rows are its vocabulary: a tokenizer with fewer tokens
// cannot show what it generates, one with more gives ids the model has no row for.
// Error(Format) at `where` unless m.tokenizer has exactly d_vocab tokens.
void check_tokenizer_fits(const Model& m, const std::string& where);
// Runs the architecture's declarations over m.config and m.weights: fills m.table (validated)
// and m.impl, and sets m.config.gated_mlp from what was declared.
void bind_architecture(Model& m, const Architecture& arch);

}  // namespace tp
