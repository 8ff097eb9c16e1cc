#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode_utf8.h"

namespace pagedserve {

BpeModel::BpeModel(std::vector<std::pair<std::string, std::int32_t>> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, BpeModelOptions options,
                   const std::string& source)
    : options_(std::move(options)), merges_(merges.size()) {
  std::int32_t limit = 0;
  for (const auto& [token, id] : vocab) {
    if (id < 0) throw SetupError(source, "model.vocab: negative id for token \"" + token + "\"");
    limit = std::max(limit, id + 1);
  }
  tokens_by_id_.resize(static_cast<std::size_t>(limit));
  for (auto& [token, id] : vocab) tokens_by_id_[static_cast<std::size_t>(id)] = std::move(token);
  ids_.reserve(tokens_by_id_.size());
  // tokens_by_id_ never changes size again, so the views stay valid. When two ids share one
  // string (some GGUF vocabularies do), the lower id wins, as in the JSON map it came from.
  for (std::int32_t id = limit - 1; id >= 0; --id) {
    const std::string& token = tokens_by_id_[static_cast<std::size_t>(id)];
    if (!token.empty()) ids_[token] = id;
  }

  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto left_id = token_to_id(left);
    const auto right_id = token_to_id(right);
    const auto merged_id = token_to_id(left + right);
    if (!left_id || !right_id || !merged_id) {
      throw SetupError(source, "model.merges[" + std::to_string(rank) + "]: \"" + left + " " + right +
                                   "\" names a token missing from model.vocab");
    }
    // The first (best-ranked) occurrence of a pair wins.
    merges_.insert(*left_id, *right_id, {static_cast<std::int32_t>(rank), *merged_id});
  }

  small_character_ids_.assign(0x800, -1);
  for (char32_t cp = 0; cp < 0x800; ++cp) {
    std::string character;
    append_utf8(cp, character);
    if (const auto id = token_to_id(character)) small_character_ids_[cp] = *id;
  }

  byte_token_ids_.assign(256, -1);
  if (options_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      if (const auto id = token_to_id(name)) byte_token_ids_[static_cast<std::size_t>(b)] = *id;
    }
  }
  if (options_.unknown_token) {
    unknown_id_ = token_to_id(*options_.unknown_token);
    if (!unknown_id_) {
      throw SetupError(source, "model.unk_token: \"" + *options_.unknown_token + "\" is not in model.vocab");
    }
  }
}

std::optional<std::int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(std::int32_t id) const {
  if (id < 0 || id >= id_limit()) return nullptr;
  const std::string& token = tokens_by_id_[static_cast<std::size_t>(id)];
  return token.empty() ? nullptr : &token;
}

std::optional<std::int32_t> BpeModel::character_id(std::string_view character) const {
  const auto lead = static_cast<unsigned char>(character[0]);
  if (character.size() == 1 || (character.size() == 2 && lead < 0xE0)) {
    std::size_t pos = 0;
    const std::int32_t id = small_character_ids_[next_code_point(character, pos)];
    if (id < 0) return std::nullopt;
    return id;
  }
  return token_to_id(character);
}

int BpeModel::fallback_byte(std::int32_t id) const {
  if (!options_.byte_fallback) return -1;
  const std::string* token = id_to_token(id);
  if (token == nullptr || token->size() != 6 || token->compare(0, 3, "<0x") != 0 || (*token)[5] != '>') {
    return -1;
  }
  unsigned value = 0;
  if (std::sscanf(token->c_str() + 3, "%2X", &value) != 1) return -1;
  return byte_token_ids_[value] == id ? static_cast<int>(value) : -1;
}

void BpeModel::append_unknown(std::string_view character, std::vector<std::int32_t>& symbols,
                              bool& previous_unknown) const {
  if (options_.byte_fallback) {
    bool all_bytes = true;
    for (const char c : character) all_bytes &= byte_token_ids_[static_cast<unsigned char>(c)] >= 0;
    if (all_bytes) {
      for (const char c : character) symbols.push_back(byte_token_ids_[static_cast<unsigned char>(c)]);
      previous_unknown = false;
      return;
    }
  }
  if (!unknown_id_) return;  // no way to encode it: dropped, as Hugging Face does
  if (options_.fuse_unknown && previous_unknown) return;
  symbols.push_back(*unknown_id_);
  previous_unknown = true;
}

void BpeModel::encode_word(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }

  // Symbols start as the word's characters, each mapped to an id.
  std::vector<std::int32_t> ids;
  ids.reserve(word.size());
  bool previous_unknown = false;
  for (std::size_t pos = 0; pos < word.size();) {
    std::size_t length = valid_utf8_prefix_char(word.substr(pos));
    if (length == 0) length = 1;  // cannot happen for validated input; stay total anyway
    const std::string_view character = word.substr(pos, length);
    pos += length;
    if (const auto id = character_id(character)) {
      ids.push_back(*id);
      previous_unknown = false;
    } else {
      append_unknown(character, ids, previous_unknown);
    }
  }
  if (ids.size() <= 1) {
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }

  // Merge the best-ranked adjacent pair until none is left: a doubly linked list of symbols and
  // a min-heap of candidate pairs (rank, left position). Entries whose symbols have changed
  // since they were queued are stale and skipped when popped.
  const int n = static_cast<int>(ids.size());
  std::vector<int> prev(static_cast<std::size_t>(n)), next(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    prev[static_cast<std::size_t>(i)] = i - 1;
    next[static_cast<std::size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    std::int32_t rank;
    int left;
    std::int32_t left_id, right_id, merged_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : left > other.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push_pair = [&](int left) {
    if (left < 0) return;
    const int right = next[static_cast<std::size_t>(left)];
    if (right < 0) return;
    const std::int32_t a = ids[static_cast<std::size_t>(left)];
    const std::int32_t b = ids[static_cast<std::size_t>(right)];
    if (const BpeMergeTable::Merge* merge = merges_.find(a, b))
      queue.push({merge->rank, left, a, b, merge->merged_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const auto left = static_cast<std::size_t>(c.left);
    if (ids[left] != c.left_id) continue;  // left symbol merged away or changed
    const int right = next[left];
    if (right < 0 || ids[static_cast<std::size_t>(right)] != c.right_id) continue;
    ids[left] = c.merged_id;
    ids[static_cast<std::size_t>(right)] = -1;
    const int after = next[static_cast<std::size_t>(right)];
    next[left] = after;
    if (after >= 0) prev[static_cast<std::size_t>(after)] = c.left;
    push_pair(prev[left]);
    push_pair(c.left);
  }
  for (int i = 0; i >= 0; i = next[static_cast<std::size_t>(i)])
    out.push_back(ids[static_cast<std::size_t>(i)]);
}

}  // namespace pagedserve
