// common/json_file.h: reading and writing a whole JSON file (config.json, a sharded
// checkpoint's index, trainer_state.json, eval.json).
//
// Errors are values: each caller turns the message into its own module's error type.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace rl::common {

// The parsed file; empty with *error ("'PATH': cannot open" or "'PATH': not valid JSON: …",
// with the parser's byte position) when it cannot be read.
std::optional<nlohmann::json> ReadJsonFile(const std::string& path, std::string* error);

// Writes `j` indented by 2 with a final newline, through "PATH.tmp" and a rename, so that no
// reader ever sees half a file. False with *error ("writing 'PATH': …") when it cannot.
bool WriteJsonFile(const std::string& path, const nlohmann::json& j, std::string* error);

}  // namespace rl::common
