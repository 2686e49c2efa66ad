#include "hub/hub_error.h"

namespace tp::hub {

namespace {

// The general kind a caller that knows nothing of the Hub acts on.
ErrorKind kind_of(HubFailure failure) {
  switch (failure) {
    case HubFailure::Gated:
    case HubFailure::Unauthorized: return ErrorKind::Usage;
    case HubFailure::RepoNotFound:
    case HubFailure::RevisionNotFound:
    case HubFailure::EntryNotFound:
    case HubFailure::NotCached: return ErrorKind::NotFound;
    case HubFailure::Checksum:
    case HubFailure::BadResponse: return ErrorKind::Format;
    case HubFailure::NoSpace:
    case HubFailure::Connection:
    case HubFailure::Http: return ErrorKind::Io;
  }
  return ErrorKind::Io;
}

}  // namespace

HubError::HubError(HubFailure failure, std::string where, std::string what, std::string hint)
    : Error(kind_of(failure), std::move(where), std::move(what), std::move(hint)), failure_(failure) {}

}  // namespace tp::hub
