// Command line and JSON config of the `pagedserve` executable:
//   pagedserve serve --model DIR [--config FILE] [flags...]
//   pagedserve generate --model DIR --prompt TEXT [flags...]
// Every flag is documented by --help (generated from the same table that parses it). The JSON
// config takes the same keys as the flags, without the dashes ("max-num-seqs" or "max_num_seqs");
// flags on the command line override the file. Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "server/engine_settings.h"
#include "server/server_options.h"

namespace pagedserve {

struct ServeCommand {
  EngineSettings engine;
  ServerOptions server;
  std::string config_file;
  std::string log_level = "info";
};

struct GenerateCommand {
  EngineSettings engine;
  std::string prompt;
  int max_tokens = 64;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = -1;
  std::optional<std::uint64_t> seed;
  bool ignore_eos = false;
  std::string log_level = "warn";
};

struct HelpText {
  std::string text;  // print to stdout, exit 0
};

struct CliError {
  std::string message;  // print to stderr with the usage line, exit 2
};

using CliResult = std::variant<ServeCommand, GenerateCommand, HelpText, CliError>;

// argv[0] is the program; argv[1] the subcommand. Reads --config FILE when given.
CliResult parse_command_line(const std::vector<std::string>& args);

// The resolved serve settings as JSON (for the startup log), same keys as the config file.
std::string describe_serve_command(const ServeCommand& command);

// "1GiB", "512MiB", "2G", "1000000" -> bytes; nothing on a malformed size.
std::optional<std::size_t> parse_byte_size(const std::string& text);

}  // namespace pagedserve
