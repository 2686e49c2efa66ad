#pragma once
// Shim for llama.cpp's common/json.h: there common_json is a thin wrapper around nlohmann::json
// whose objects keep their keys in insertion order. The engine (value.cpp's from_json) uses only
// the read-side API that nlohmann::ordered_json has under the same names, so the alias is the
// whole shim. Insertion order matters: templates iterate over message/tool objects, and
// @huggingface/jinja (JavaScript objects) keeps the order the JSON was written in.

#include <nlohmann/json.hpp>

using common_json = nlohmann::ordered_json;
