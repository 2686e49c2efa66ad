// Fetching from the Hub into the HuggingFace cache, the way huggingface_hub's hf_hub_download
// and snapshot_download do (HEAD for the commit and ETag, then the bytes, then the snapshot
// link), so that the cache both tools share stays one cache. Offline (HF_HUB_OFFLINE=1), or
// when the Hub cannot be reached, only the cache answers.
#pragma once
#include <string>
#include <vector>

#include "hub/hub_ref.h"
#include "hub/hub_settings.h"

namespace tp::hub {

// One file (ref.file set): its path in the snapshot folder. A commit-hash revision whose file
// is cached costs no request.
std::string fetch_file(const HubRef& ref, const HubSettings& settings);
// The files a model folder needs (repo_files.h) at one commit: the snapshot folder.
std::string fetch_model_folder(const HubRef& ref, const HubSettings& settings);
// llama.cpp's -hf: the GGUF of a quantisation (every part of a split one): the first part's path.
std::string fetch_gguf(const GgufRepoRef& ref, const HubSettings& settings);
// fetch_file when ref names a file, else fetch_model_folder.
std::string fetch(const HubRef& ref, const HubSettings& settings);

// A repository's files at a revision and the commit it resolved to: from the Hub's
// /api/models/OWNER/NAME/revision/REV, or offline from the cached snapshot folder.
struct RepoListing {
  std::string commit;
  std::vector<std::string> files;
  bool from_cache = false;
};
RepoListing list_repo(const std::string& repo, const std::string& revision, const HubSettings& settings);

}  // namespace tp::hub
