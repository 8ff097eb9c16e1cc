// Fuzzes config.json + generation_config.json reading (model/model_config.h) with any bytes: the
// input up to the first NUL is config.json, the rest generation_config.json. The result is a
// config or a SetupError; an accepted config's derived sizes compute without overflow (UBSan).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "model/model_config.h"
#include "tests/fuzz/fuzz_check.h"

using namespace pagedserve;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  std::string_view config = input.substr(0, split);
  std::string_view generation = split == std::string_view::npos ? std::string_view{} : input.substr(split + 1);
  try {
    ModelConfig parsed = parse_model_config(config, generation);
    FUZZ_CHECK(parsed.hidden_size > 0 && parsed.num_hidden_layers > 0 && parsed.vocab_size > 0);
    FUZZ_CHECK(parsed.num_attention_heads > 0 && parsed.num_key_value_heads > 0 && parsed.head_dim > 0);
    FUZZ_CHECK(parsed.num_attention_heads % parsed.num_key_value_heads == 0);
    FUZZ_CHECK(parsed.q_size() > 0 && parsed.kv_size() > 0);
    FUZZ_CHECK(parsed.max_position_embeddings > 0);
  } catch (const SetupError&) {
  }
  return 0;
}
