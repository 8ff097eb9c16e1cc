// Reading a model directory's chat template and special tokens (tokenizer_config.json, named
// template lists, chat_template.jinja), and the engine's syntax and render errors.
#include "chat_template/model_chat_template.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "chat_template/chat_template.h"
#include "chat_template/template_error.h"
#include "core/error.h"

namespace pagedserve {
namespace {

namespace fs = std::filesystem;

class ModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pagedserve-chat-template-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  fs::path dir_;
};

TEST_F(ModelDir, StringTemplateAndSpecialTokens) {
  write(
      "tokenizer_config.json",
      R"({"chat_template":"{{ bos_token }}x","bos_token":{"content":"<s>","lstrip":false},"eos_token":"</s>"})");
  ModelChatTemplate t = load_model_chat_template(dir_.string());
  ASSERT_TRUE(t.source);
  EXPECT_EQ(*t.source, "{{ bos_token }}x");
  EXPECT_EQ(t.special_tokens["bos_token"], "<s>");
  EXPECT_EQ(t.special_tokens["eos_token"], "</s>");
}

TEST_F(ModelDir, NamedTemplatesUseDefaultAndJinjaFileWins) {
  write("tokenizer_config.json",
        R"({"chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"D"}]})");
  EXPECT_EQ(*load_model_chat_template(dir_.string()).source, "D");
  write("chat_template.jinja", "J");
  EXPECT_EQ(*load_model_chat_template(dir_.string()).source, "J");
}

TEST_F(ModelDir, NoTemplateAndMalformedConfig) {
  write("tokenizer_config.json", R"({"eos_token":"</s>"})");
  EXPECT_FALSE(load_model_chat_template(dir_.string()).source);
  write("tokenizer_config.json", R"({"chat_template":[{"name":"rag","template":"R"}]})");
  EXPECT_THROW(load_model_chat_template(dir_.string()), SetupError);
  write("tokenizer_config.json", "{not json");
  EXPECT_THROW(load_model_chat_template(dir_.string()), SetupError);
}

TEST(ChatTemplateErrors, SyntaxAndRenderErrorsAreTemplateErrors) {
  EXPECT_THROW(ChatTemplate("{% if x %}unclosed"), chat_template::TemplateError);
  EXPECT_THROW(ChatTemplate("{{ 'unterminated }}"), chat_template::TemplateError);
  EXPECT_THROW(ChatTemplate("{% unknown_tag %}"), chat_template::TemplateError);
  ChatTemplate undefined_attribute("{{ missing.attribute }}");
  EXPECT_THROW(undefined_attribute.render(nlohmann::ordered_json::object(), 0), chat_template::TemplateError);
  ChatTemplate raises("{{ raise_exception('Only user and assistant roles are supported') }}");
  try {
    raises.render(nlohmann::ordered_json::object(), 0);
    FAIL() << "raise_exception did not throw";
  } catch (const chat_template::TemplateError& e) {
    EXPECT_STREQ(e.what(), "Only user and assistant roles are supported");
  }
  ChatTemplate recursion("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
  EXPECT_THROW(recursion.render(nlohmann::ordered_json::object(), 0), chat_template::TemplateError);
}

// Found by tests/fuzz/chat_template_fuzz: an integer literal beyond int64 escaped the parser as
// std::out_of_range (std::stoll), which is not a TemplateError and would end the server at startup.
TEST(ChatTemplateErrors, LiteralsBeyondTheMachineRangeAreTemplateErrorsOrInf) {
  EXPECT_THROW(ChatTemplate("{{ 22222222222222222222222222222 }}"), chat_template::TemplateError);
  EXPECT_THROW(ChatTemplate("{{ x.99999999999999999999 }}"), chat_template::TemplateError);
  EXPECT_EQ(ChatTemplate("{{ 9223372036854775807 }}").render(nlohmann::ordered_json::object(), 0),
            "9223372036854775807");
  // Python's float() reads an out-of-range literal as inf, and so does the engine.
  EXPECT_EQ(ChatTemplate("{{ 1e999 > 1e308 }}").render(nlohmann::ordered_json::object(), 0), "True");
}

// Found by tests/fuzz/chat_template_fuzz: "\x" escapes without hex digits escaped the lexer as
// std::invalid_argument (std::stoul). Python requires exactly 2/4/8 hex digits and <= U+10FFFF.
// Found by tests/fuzz/chat_template_fuzz: `**` past int64 converted an out-of-range double to
// int64 (undefined behaviour, reported by UBSan); +, -, * and // overflowed the same way. Python
// would give a big int; the engine says it cannot, as a TemplateError (a 400 on the request path).
TEST(ChatTemplateErrors, IntegerOverflowIsATemplateError) {
  const auto render = [](const char* source) {
    return ChatTemplate(source).render(nlohmann::ordered_json::object(), 0);
  };
  EXPECT_THROW(render("{{ 2 ** 100 }}"), chat_template::TemplateError);
  EXPECT_THROW(render("{{ 9223372036854775807 + 1 }}"), chat_template::TemplateError);
  EXPECT_THROW(render("{{ -9223372036854775807 - 2 }}"), chat_template::TemplateError);
  EXPECT_THROW(render("{{ 4294967296 * 4294967296 }}"), chat_template::TemplateError);
  EXPECT_THROW(render("{{ (-9223372036854775807 - 1) // -1 }}"), chat_template::TemplateError);
  EXPECT_EQ(render("{{ (-9223372036854775807 - 1) % -1 }}"), "0");
  EXPECT_EQ(render("{{ 2 ** 62 }} {{ 7 // -2 }} {{ 7 % -2 }} {{ 2 ** -1 }}"), "4611686018427387904 -4 -1 0.5");
}

TEST(ChatTemplateErrors, BadStringEscapesAreTemplateErrors) {
  EXPECT_THROW(ChatTemplate(R"({{ "\xZZ" }})"), chat_template::TemplateError);
  EXPECT_THROW(ChatTemplate(R"({{ "\u12G4" }})"), chat_template::TemplateError);
  EXPECT_THROW(ChatTemplate(R"({{ "\x1" }})"), chat_template::TemplateError);
  EXPECT_THROW(ChatTemplate(R"({{ "\U00110000" }})"), chat_template::TemplateError);
  EXPECT_EQ(ChatTemplate(R"({{ "\x41\u00e9\U0001F600" }})").render(nlohmann::ordered_json::object(), 0),
            "A\u00e9\U0001F600");
}

}  // namespace
}  // namespace pagedserve
