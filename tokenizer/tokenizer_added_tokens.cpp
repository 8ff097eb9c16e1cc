#include "tokenizer/tokenizer_added_tokens.h"

#include <algorithm>

namespace pagedserve {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

AddedTokens::AddedTokens(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  by_first_byte_.resize(256);
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    by_id_.emplace(token.id, i);
    by_content_.emplace(token.content, token.id);
    if (!token.content.empty()) by_first_byte_[static_cast<unsigned char>(token.content[0])].push_back(i);
  }
  for (auto& candidates : by_first_byte_) {
    std::stable_sort(candidates.begin(), candidates.end(), [&](std::size_t a, std::size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

std::vector<TextSegment> AddedTokens::split(std::string_view text) const {
  std::vector<TextSegment> segments;
  std::size_t plain_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const AddedToken* found = nullptr;
    if (!tokens_.empty()) {
      for (const std::size_t i : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
        if (text.substr(pos).starts_with(tokens_[i].content)) {
          found = &tokens_[i];
          break;
        }
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    std::size_t plain_end = pos;
    if (found->lstrip) {
      while (plain_end > plain_start && is_space(text[plain_end - 1])) --plain_end;
    }
    if (plain_end > plain_start) {
      segments.push_back({text.substr(plain_start, plain_end - plain_start), std::nullopt, plain_start});
    }
    segments.push_back({text.substr(pos, found->content.size()), found->id, pos});
    pos += found->content.size();
    if (found->rstrip) {
      while (pos < text.size() && is_space(text[pos])) ++pos;
    }
    plain_start = pos;
  }
  if (plain_start < text.size()) {
    segments.push_back({text.substr(plain_start), std::nullopt, plain_start});
  }
  return segments;
}

const AddedToken* AddedTokens::find_by_id(std::int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<std::int32_t> AddedTokens::find_by_content(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

}  // namespace pagedserve
