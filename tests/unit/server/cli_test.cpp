#include "server/cli.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

namespace pagedserve {
namespace {

CliResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "pagedserve");
  return parse_command_line(args);
}

TEST(Cli, ServeDefaultsAndFlags) {
  CliResult r = parse({"serve", "--model", "models/tiny", "--port=9001", "--host", "0.0.0.0",
                       "--max-num-seqs", "8", "--kv-cache-memory", "64MiB", "--api-key", "k", "--load-format",
                       "dummy", "--enable-prefix-caching", "false", "--api-key-for-probes"});
  ASSERT_TRUE(std::holds_alternative<ServeCommand>(r)) << std::get<CliError>(r).message;
  const ServeCommand& c = std::get<ServeCommand>(r);
  EXPECT_EQ(c.engine.model_dir, "models/tiny");
  EXPECT_EQ(c.server.port, 9001);
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.engine.max_num_seqs, 8);
  EXPECT_EQ(c.engine.kv_cache_memory_bytes, 64u << 20);
  EXPECT_EQ(c.server.api_key, "k");
  EXPECT_TRUE(c.server.api_key_for_health_and_metrics);
  EXPECT_EQ(c.engine.load_format, "dummy");
  EXPECT_FALSE(c.engine.enable_prefix_caching);
  EXPECT_EQ(c.engine.page_size, 16);  // default
  EXPECT_NE(describe_serve_command(c).find("\"api-key\":\"<set>\""), std::string::npos);
}

TEST(Cli, ConfigFileThenFlagsOverride) {
  unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::string path = ::testing::TempDir() + "pagedserve_cli_" + std::to_string(seed) + ".json";
  std::ofstream(path) << R"({"model": "from-file", "port": 7000, "max_num_batched_tokens": 512,
                           "enable-prefix-caching": false, "kv-cache-memory": "2GiB"})";
  CliResult r = parse({"serve", "--config", path, "--port", "7001"});
  std::remove(path.c_str());
  ASSERT_TRUE(std::holds_alternative<ServeCommand>(r)) << std::get<CliError>(r).message;
  const ServeCommand& c = std::get<ServeCommand>(r);
  EXPECT_EQ(c.engine.model_dir, "from-file");
  EXPECT_EQ(c.server.port, 7001);
  EXPECT_EQ(c.engine.max_num_batched_tokens, 512);
  EXPECT_FALSE(c.engine.enable_prefix_caching);
  EXPECT_EQ(c.engine.kv_cache_memory_bytes, std::size_t(2) << 30);
}

TEST(Cli, ConfigFileErrorsNameFileAndKey) {
  std::string path = ::testing::TempDir() + "pagedserve_cli_bad.json";
  std::ofstream(path) << R"({"model": "m", "max-num-seqz": 3})";
  CliResult r = parse({"serve", "--config", path});
  std::remove(path.c_str());
  ASSERT_TRUE(std::holds_alternative<CliError>(r));
  EXPECT_NE(std::get<CliError>(r).message.find("max-num-seqz"), std::string::npos);
  EXPECT_NE(std::get<CliError>(r).message.find(path), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve", "--config", "/nonexistent/x.json"})));
}

TEST(Cli, Errors) {
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"fly"})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve"})));  // --model missing
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve", "--model", "m", "--port", "70000"})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve", "--model", "m", "--backend", "tpu"})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve", "--model", "m", "--page-size", "8"})));
  EXPECT_TRUE(
      std::holds_alternative<CliError>(parse({"serve", "--model", "m", "--kv-cache-memory", "lots"})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve", "--model", "m", "--bogus", "1"})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"serve", "--model"})));
  EXPECT_TRUE(std::holds_alternative<CliError>(parse({"generate", "--model", "m", "--temperature", "-1"})));
}

TEST(Cli, HelpDocumentsEveryFlag) {
  CliResult r = parse({"serve", "--help"});
  ASSERT_TRUE(std::holds_alternative<HelpText>(r));
  const std::string& help = std::get<HelpText>(r).text;
  for (const char* flag : {"--model", "--config", "--host", "--port", "--backend", "--page-size",
                           "--max-num-seqs", "--max-num-batched-tokens", "--kv-cache-memory", "--api-key",
                           "--load-format", "--threads", "--shutdown-timeout", "--max-body-bytes"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  CliResult g = parse({"generate", "--help"});
  ASSERT_TRUE(std::holds_alternative<HelpText>(g));
  for (const char* flag :
       {"--prompt", "--max-tokens", "--temperature", "--top-p", "--top-k", "--seed", "--backend"}) {
    EXPECT_NE(std::get<HelpText>(g).text.find(flag), std::string::npos) << flag;
  }
  EXPECT_TRUE(std::holds_alternative<HelpText>(parse({"--help"})));
}

TEST(Cli, Generate) {
  CliResult r = parse({"generate", "--model", "m", "--prompt", "Hello", "--max-tokens", "5", "--temperature",
                       "0", "--top-k", "3", "--seed", "7"});
  ASSERT_TRUE(std::holds_alternative<GenerateCommand>(r)) << std::get<CliError>(r).message;
  const GenerateCommand& c = std::get<GenerateCommand>(r);
  EXPECT_EQ(c.prompt, "Hello");
  EXPECT_EQ(c.max_tokens, 5);
  EXPECT_EQ(c.temperature, 0.0f);
  EXPECT_EQ(c.top_k, 3);
  EXPECT_EQ(c.seed, 7u);
}

TEST(Cli, ShippedDefaultConfigParses) {
  CliResult r = parse(
      {"serve", "--config", std::string(PAGEDSERVE_SOURCE_DIR) + "/configs/default.json", "--model", "m"});
  ASSERT_TRUE(std::holds_alternative<ServeCommand>(r)) << std::get<CliError>(r).message;
  EXPECT_EQ(std::get<ServeCommand>(r).server.port, 8000);
}

TEST(Cli, ByteSizes) {
  EXPECT_EQ(parse_byte_size("1GiB"), std::size_t(1) << 30);
  EXPECT_EQ(parse_byte_size("512MiB"), std::size_t(512) << 20);
  EXPECT_EQ(parse_byte_size("1.5G"), std::size_t(3) << 29);
  EXPECT_EQ(parse_byte_size("1000"), 1000u);
  EXPECT_EQ(parse_byte_size("2GB"), 2000000000u);
  EXPECT_FALSE(parse_byte_size("GiB").has_value());
  EXPECT_FALSE(parse_byte_size("12XB").has_value());
}

}  // namespace
}  // namespace pagedserve
