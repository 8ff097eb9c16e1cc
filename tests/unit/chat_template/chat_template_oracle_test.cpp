// Every template in tests/data/chat_templates/ over every conversation in cases.json, rendered by
// our engine, must equal jinja2's output byte for byte (expected/*.json, made by
// render_fixtures.py), or fail where jinja2 fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "chat_template/chat_prompt.h"
#include "chat_template/chat_template.h"
#include "chat_template/template_error.h"

namespace pagedserve {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr std::time_t kNow = 1767323045;  // render_fixtures.py's NOW

const fs::path kData = fs::path(PAGEDSERVE_SOURCE_DIR) / "tests" / "data" / "chat_templates";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Where two renders part, with some context: the whole outputs are long.
std::string first_difference(const std::string& got, const std::string& want) {
  std::size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  const std::size_t from = at > 80 ? at - 80 : 0;
  return "first difference at byte " + std::to_string(at) +
         "\n  ours:   " + ordered_json(got.substr(from, 160)).dump() +
         "\n  jinja2: " + ordered_json(want.substr(from, 160)).dump();
}

ChatPromptInput input_for(const ordered_json& c) {
  ChatPromptInput input;
  input.messages = c.at("messages");
  input.tools = c.value("tools", ordered_json());
  input.template_kwargs = c.value("template_kwargs", ordered_json::object());
  input.add_generation_prompt = c.value("add_generation_prompt", true);
  input.continue_final_message = c.value("continue_final_message", false);
  return input;
}

class ChatTemplateOracle : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    setenv("TZ", "UTC", 1);  // strftime_now formats kNow in UTC, as the fixtures do
    tzset();
  }
};

TEST_P(ChatTemplateOracle, RendersLikeJinja2) {
  const fs::path template_path = kData / (GetParam() + ".jinja");
  std::string expected_name = GetParam();
  expected_name.replace(expected_name.find('/'), 1, "__");
  const ordered_json cases = ordered_json::parse(read_text(kData / "cases.json"));
  const ordered_json expected =
      ordered_json::parse(read_text(kData / "expected" / (expected_name + ".json")));
  const ordered_json special_tokens = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};

  std::optional<ChatTemplate> chat_template;
  std::string compile_error;
  try {
    chat_template.emplace(read_text(template_path));
  } catch (const chat_template::TemplateError& e) {
    compile_error = e.what();
  }
  for (auto it = cases.begin(); it != cases.end(); ++it) {
    SCOPED_TRACE("case " + it.key());
    const ordered_json& want = expected.at(it.key());
    std::string got;
    std::string error = compile_error;
    if (chat_template) {
      try {
        got = render_chat_prompt(*chat_template, special_tokens, input_for(it.value()), kNow);
      } catch (const chat_template::TemplateError& e) {
        error = e.what();
      }
    }
    if (want.contains("error")) {
      EXPECT_FALSE(error.empty()) << "jinja2 fails (" << want["error"].get<std::string>()
                                  << ") but we rendered:\n"
                                  << got;
    } else {
      ASSERT_TRUE(error.empty()) << "we fail: " << error;
      const std::string& output = want["output"].get_ref<const std::string&>();
      EXPECT_TRUE(got == output) << first_difference(got, output);
    }
  }
}

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const char* folder : {"features", "lenml", "llama.cpp"}) {
    for (const auto& entry : fs::directory_iterator(kData / folder)) {
      if (entry.path().extension() == ".jinja")
        names.push_back(std::string(folder) + "/" + entry.path().stem().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name;
  for (char c : info.param) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Templates, ChatTemplateOracle, ::testing::ValuesIn(template_names()), test_name);

}  // namespace
}  // namespace pagedserve
