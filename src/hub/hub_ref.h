// Names of things on the HuggingFace Hub, as users write them: tokenprobe's
// `hf://OWNER/NAME[@REVISION][/FILE]` and llama.cpp's `-hf OWNER/NAME[:QUANT]`.
// Parsing treats the text as hostile: every part becomes a path under the cache, so a part
// that could climb out of it (`..`, an absolute path, a backslash, a control byte) is refused.
#pragma once
#include <string>

namespace tp::hub {

inline constexpr const char* kDefaultRevision = "main";

// One repository (OWNER/NAME) at one revision; with `file`, one file in it.
struct HubRef {
  std::string repo;                       // "OWNER/NAME"
  std::string revision = kDefaultRevision;  // a branch, a tag or a 40-hex commit
  std::string file;                       // a path inside the repository; empty: the model folder
};

// llama.cpp's `-hf OWNER/NAME[:QUANT]`: a GGUF repository and the quantisation to pick.
struct GgufRepoRef {
  std::string repo;
  std::string quant;  // as written ("q8_0"); empty: the default (kDefaultQuant)
};
inline constexpr const char* kDefaultQuant = "Q4_K_M";  // llama.cpp's default

bool is_hub_uri(const std::string& text);  // starts with "hf://"
// hf://OWNER/NAME[@REVISION][/FILE]. A revision holding '/' (refs/pr/1) is written with %2F,
// as huggingface_hub's HfFileSystem does. Throws Error(Usage) naming the part that is wrong.
HubRef parse_hub_uri(const std::string& uri);
// OWNER/NAME[:QUANT]; throws Error(Usage).
GgufRepoRef parse_gguf_repo(const std::string& text);
// hf://OWNER/NAME@REV/FILE: the canonical spelling, for messages.
std::string to_uri(const HubRef& ref);

// Checks one part; `what` names it in the error ("the repository id"). Exposed for the cache,
// which checks the names a server sends (file names in a listing, commits, etags) the same way.
void check_repo_id(const std::string& repo, const std::string& what);
void check_revision(const std::string& revision, const std::string& what);
void check_repo_path(const std::string& path, const std::string& what);
bool is_commit_hash(const std::string& s);  // 40 lowercase hex digits

}  // namespace tp::hub
