#include "tokenizer/tokenizer_json_reader.h"

#include <fstream>

#include "core/error.h"

namespace pagedserve {

namespace {

using nlohmann::json;
using DomParser = nlohmann::detail::json_sax_dom_parser<json>;

// Forwards every event to a DOM parser except the contents of model.vocab and model.merges,
// which it collects itself. Keeps the path of object keys to know where it is.
class TokenizerSax {
 public:
  TokenizerSax(json& root, TokenizerJsonDocument& document, std::string path)
      : dom_(root, /*allow_exceptions=*/true), document_(document), path_(std::move(path)) {}

  bool null() { return capturing() ? bad_entry("null") : dom_.null(); }
  bool boolean(bool value) { return capturing() ? bad_entry("a boolean") : dom_.boolean(value); }
  bool number_integer(json::number_integer_t value) {
    if (capture_ == Capture::kVocab) return vocab_id(value);
    return capturing() ? bad_entry("a number") : dom_.number_integer(value);
  }
  bool number_unsigned(json::number_unsigned_t value) {
    if (capture_ == Capture::kVocab) return vocab_id(static_cast<json::number_integer_t>(value));
    return capturing() ? bad_entry("a number") : dom_.number_unsigned(value);
  }
  bool number_float(json::number_float_t value, const json::string_t& text) {
    return capturing() ? bad_entry("a float") : dom_.number_float(value, text);
  }
  bool string(json::string_t& value) {
    if (capture_ == Capture::kMerges) {
      if (capture_depth_ == 1) {  // "a b"
        const std::size_t space = value.find(' ', 1);
        if (space == std::string::npos) {
          throw SetupError(path_, merge_field() + ": \"" + value + "\" is not two tokens");
        }
        document_.merges.emplace_back(value.substr(0, space), value.substr(space + 1));
        return true;
      }
      if (capture_depth_ == 2 && merge_parts_ < 2) {  // ["a", "b"]
        (merge_parts_ == 0 ? document_.merges.back().first : document_.merges.back().second) = value;
        ++merge_parts_;
        return true;
      }
      return bad_entry("a string");
    }
    return capturing() ? bad_entry("a string") : dom_.string(value);
  }
  bool binary(json::binary_t& value) { return capturing() ? bad_entry("binary") : dom_.binary(value); }

  bool start_object(std::size_t size) {
    if (capturing()) {
      if (capture_ == Capture::kMerges || capture_depth_ > 0) return bad_entry("an object");
      ++capture_depth_;
      return true;
    }
    keys_.emplace_back();
    const bool in_model = keys_.size() == 3 && keys_[0] == "model" && keys_[1] == "vocab";
    if (in_model) {
      keys_.pop_back();
      capture_ = Capture::kVocab;
      capture_depth_ = 1;
      return dom_.start_object(0) && dom_.end_object();
    }
    return dom_.start_object(size);
  }
  bool key(json::string_t& value) {
    if (capture_ == Capture::kVocab) {
      vocab_key_ = value;
      return true;
    }
    keys_.back() = value;
    return dom_.key(value);
  }
  bool end_object() {
    if (capturing()) {
      if (--capture_depth_ == 0) capture_ = Capture::kNone;
      return true;
    }
    keys_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t size) {
    if (capture_ == Capture::kMerges) {
      if (capture_depth_ != 1) return bad_entry("a nested array");
      document_.merges.emplace_back();
      merge_parts_ = 0;
      ++capture_depth_;
      return true;
    }
    if (capturing()) return bad_entry("an array");
    if (keys_.size() == 2 && keys_[0] == "model" && keys_[1] == "merges") {
      capture_ = Capture::kMerges;
      capture_depth_ = 1;
      return dom_.start_array(0) && dom_.end_array();
    }
    keys_.emplace_back();  // arrays have no keys; keep the depth honest
    return dom_.start_array(size);
  }
  bool end_array() {
    if (capture_ == Capture::kMerges) {
      if (capture_depth_ == 2 && merge_parts_ != 2) {
        throw SetupError(path_, merge_field() + ": expected \"a b\" or [\"a\", \"b\"]");
      }
      if (--capture_depth_ == 0) capture_ = Capture::kNone;
      return true;
    }
    keys_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& e) {
    throw SetupError(path_, "invalid JSON near byte " + std::to_string(position) + " (\"" + last_token +
                                "\"): " + e.what());
  }

 private:
  enum class Capture { kNone, kVocab, kMerges };
  bool capturing() const { return capture_ != Capture::kNone; }
  std::string merge_field() const {
    // Inside ["a", "b"] the entry has been appended already; a bare value has not.
    const std::size_t index = document_.merges.size() - (capture_depth_ == 2 ? 1 : 0);
    return "model.merges[" + std::to_string(index) + "]";
  }
  bool vocab_id(json::number_integer_t id) {
    if (capture_depth_ != 1 || id < 0 || id > INT32_MAX) return bad_entry("an out-of-range id");
    document_.vocab.emplace_back(std::move(vocab_key_), static_cast<std::int32_t>(id));
    return true;
  }
  [[noreturn]] bool bad_entry(const char* what) {
    if (capture_ == Capture::kVocab) {
      throw SetupError(path_, "model.vocab[\"" + vocab_key_ + "\"]: unexpected " + std::string(what) +
                                  " (expected an integer id)");
    }
    throw SetupError(
        path_, merge_field() + ": unexpected " + std::string(what) + " (expected \"a b\" or [\"a\", \"b\"])");
  }

  DomParser dom_;
  TokenizerJsonDocument& document_;
  std::string path_;
  std::vector<std::string> keys_;  // the key last seen at each open object (or "" for arrays)
  Capture capture_ = Capture::kNone;
  int capture_depth_ = 0;
  int merge_parts_ = 0;
  std::string vocab_key_;
};

}  // namespace

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw SetupError(path.string(), "cannot open file");
  const std::streamsize size = in.tellg();
  std::string text(static_cast<std::size_t>(size < 0 ? 0 : size), '\0');
  in.seekg(0);
  if (!in.read(text.data(), size)) throw SetupError(path.string(), "cannot read file");
  return text;
}

TokenizerJsonDocument read_tokenizer_json(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  TokenizerJsonDocument document;
  TokenizerSax sax(document.root, document, path.string());
  json::sax_parse(text, &sax);
  if (!document.root.is_object()) throw SetupError(path.string(), "top level is not a JSON object");
  return document;
}

}  // namespace pagedserve
