// Generates tests/fixtures/tokenizer/hf_random_{qwen2,gpt2,llama3,llama3_2}.jsonl: pseudo-random
// strings that
// stress the pre-tokenizer (scripts, digits of every kind, Unicode whitespace, contractions,
// combining marks that NFC composes, emoji sequences, added tokens, long runs) and the ids,
// decodings and special-skipping decodings that Hugging Face's own Rust tokenizers produce;
// and hf_decode_{qwen2,gpt2}.jsonl: random id sequences (mostly single-byte tokens, so most
// decode to broken UTF-8, and added tokens) with Hugging Face's decodings. Llama 3's strings
// are the same 1502 plus 300 strings with its own added tokens and digit runs (its split regex
// groups digits by three), made by a second stream so the other files stay as they are; Llama
// 3.2's (the same merges as pairs, added tokens renamed: <|eom_id|>, <|python_tag|>) likewise.
//
//   mkdir /tmp/hf && cd /tmp/hf && npm install tokenizers@0.23.2   (HF's Node bindings)
//   NODE_PATH=/tmp/hf/node_modules node tests/text/make_hf_vectors.js \
//       QWEN_TOKENIZER_JSON GPT2_ENCODER_JSON GPT2_VOCAB_BPE tests/fixtures/tokenizer \
//       [LLAMA3_TOKENIZER_JSON LLAMA3_2_TOKENIZER_JSON]
// (the inputs are the files tests/text/fetch_tokenizers.sh caches; Llama 3's from
// `fetch_tokenizers.sh more`). Deterministic.
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fragments = [
  // words and cases
  'Hello', 'world', 'the', 'The', 'THE', 'tokenization', 'GRPO', 'x', 'a', 'I', 'camelCase',
  'snake_case', 'München', 'naïve', 'façade', 'Ærøskøbing', 'straße', 'İstanbul', 'ΣΊΣΥΦΟΣ',
  'Привет', 'мир', 'שלום', 'مرحبا', 'नमस्ते', 'হ্যালো', 'สวัสดี', 'ສະບາຍດີ', 'កាន់តែ', '안녕하세요',
  '你好', '世界', '我想在apple工作', 'こんにちは', 'カタカナ', 'ｆｕｌｌｗｉｄｔｈ', 'Ⅻ', 'ǅ', 'ﬁ',
  // contractions, including case variants and the long s that folds to s
  "'s", "'S", "'t", "'T", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "'D", "'ſ", "'K", "'x",
  "don't", "y'all", "O'Neil", '’s',
  // digits and numbers of every kind
  '0', '7', '42', '333', '2024', '1234567', '3.14159', '1e-9', '٣٤', '３', '²', '½', '⅓', '१२',
  // punctuation and symbols
  '.', ',', '!', '?', '...', '!!!', '?!', '(', ')', '[', ']', '{', '}', '<', '>', '/', '\\', '-',
  '--', '—', '–', '_', '__', '#', '@', '$', '%', '^', '&', '*', '+', '=', '|', '~', '`', '"',
  "'", '«', '»', '“', '”', '€', '£', '¥', '©', '®', '™', '°', '±', '×', '÷', '∑', '√', '∞', '≤',
  '→', '⇒', '∀', 'ℝ', '\\frac{1}{2}', '\\boxed{42}', 'x^2', 'f(x)=', 'a_{n+1}', '$$',
  // whitespace of every kind (U+180E and U+200B are not White_Space)
  ' ', ' ', ' ', '  ', '   ', '    ', '\t', '\t\t', '\n', '\n\n', '\n\n\n', '\r\n', '\r', ' \n',
  '\n ', '\u000b', '\u000c', '\u0085', '\u00a0', '\u1680', '\u2003', '\u2009', '\u2028',
  '\u2029', '\u202f', '\u205f', '\u3000', '\u180e', '\u200b', '\u200d', '\ufeff',
  // combining marks: NFC composes some, not others
  'e\u0301', 'a\u0308', 'n\u0303', 'A\u030a', 'o\u0302\u0323', 'q\u0307', '\u0301',
  '\u1100\u1161\u11a8', 'ｶﾞ', '\u0915\u093c',
  // emoji: single, ZWJ sequences, skin tones, flags, keycaps, variation selectors
  '🦙', '🚀', '😁', '✅', '😶‍🌫️', '👩‍👩‍👧‍👦', '👍🏽', '🇫🇷', '1️⃣', '❤️', '☺︎', '🫠',
  // added tokens (Qwen2's) and near misses
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<think>', '</think>', '<tool_call>',
  '<|im_start|>user\n', '<|im_', '|>', '<|fim_prefix|>', '<|box_start|>',
  // code
  'def f(x):', '    return x', 'if (a && b) {', '}', '#include <vector>', '//', '/* */',
  'std::vector<int32_t>', '=>', '!==', 'ptr->next', '0x1F', 'i++', 'SELECT * FROM t;',
];

function makeStrings() {
  const random = mulberry32(20240607);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const strings = [];
  for (let i = 0; i < 1500; ++i) {
    const n = 1 + Math.floor(random() * 12);
    let s = '';
    for (let k = 0; k < n; ++k) s += pick(fragments);
    strings.push(s);
  }
  // Long inputs: runs of whitespace and a long mixed paragraph.
  strings.push(' '.repeat(300) + 'x' + '\n'.repeat(50) + '\t'.repeat(20) + 'y   ');
  let paragraph = '';
  while (paragraph.length < 5000) paragraph += pick(fragments) + (random() < 0.5 ? ' ' : '');
  strings.push(paragraph);
  return strings;
}

// Llama 3's chat markers, reserved tokens and near misses, mixed with digit runs of every
// length (the \p{N}{1,3} groups) and contractions in both cases.
const llamaFragments = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>',
  '<|eot_id|>', '<|eom_id|>', '<|python_tag|>', '<|reserved_special_token_0|>',
  '<|reserved_special_token_250|>', '<|finetune_right_pad_id|>', '<|start_header_id',
  '<|eot', 'user', 'assistant', 'system', '\n\n', ' ', '1', '12', '123', '1234', '12345',
  '123456', '1234567890', '٣٤٥٦', '²³⁴', ' 2024', "'S", "'ll", "'LL", "I'M", 'Hello', '😁',
  '\t', '  ', 'x', '.',
];

function makeLlamaExtraStrings() {
  const random = mulberry32(31415);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const strings = [];
  for (let i = 0; i < 300; ++i) {
    const n = 1 + Math.floor(random() * 12);
    let s = '';
    for (let k = 0; k < n; ++k) s += pick(random() < 0.6 ? llamaFragments : fragments);
    strings.push(s);
  }
  return strings;
}

function gpt2Json(encoderPath, vocabPath) {
  const vocab = JSON.parse(fs.readFileSync(encoderPath, 'utf8'));
  const merges = fs.readFileSync(vocabPath, 'utf8').split('\n')
      .filter((line) => line.length > 0 && !line.startsWith('#'));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true,
                      use_regex: true };
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false,
                     rstrip: false, normalized: true, special: true }],
    normalizer: null, pre_tokenizer: byteLevel, post_processor: byteLevel, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '',
             end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  });
}

async function write(tokenizer, strings, file) {
  const lines = [];
  for (const text of strings) {
    const ids = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
    lines.push(JSON.stringify({
      text, ids,
      decoded: await tokenizer.decode(ids, false),
      decoded_skip_special: await tokenizer.decode(ids, true),
    }));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

// Added tokens are the top 30 ids unless `added` gives their first id and count (Llama 3's 256
// sit above its 128000 merged tokens, their useful ones at the bottom).
async function writeDecode(tokenizer, file, added) {
  const random = mulberry32(99);
  const size = tokenizer.getVocabSize(true);
  const lines = [];
  for (let i = 0; i < 500; ++i) {
    const ids = [];
    const n = 1 + Math.floor(random() * 10);
    for (let k = 0; k < n; ++k) {
      const r = random();
      // Bytes (ids 0..255 in both vocabularies), the top 30 ids (added tokens), anything.
      if (r < 0.75) ids.push(Math.floor(random() * 256));
      else if (r < 0.85 && !added) ids.push(size - 1 - Math.floor(random() * 30));
      else if (r < 0.85) ids.push(added.first + Math.floor(random() * added.count));
      else ids.push(Math.floor(random() * size));
    }
    lines.push(JSON.stringify({
      ids, decoded: await tokenizer.decode(ids, false),
      decoded_skip_special: await tokenizer.decode(ids, true),
    }));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

(async () => {
  const [qwenPath, encoderPath, vocabPath, outDir, ...llamaPaths] = process.argv.slice(2);
  const strings = makeStrings();
  const qwen = Tokenizer.fromFile(qwenPath);
  const gpt2 = Tokenizer.fromString(gpt2Json(encoderPath, vocabPath));
  await write(qwen, strings, path.join(outDir, 'hf_random_qwen2.jsonl'));
  await write(gpt2, strings, path.join(outDir, 'hf_random_gpt2.jsonl'));
  await writeDecode(qwen, path.join(outDir, 'hf_decode_qwen2.jsonl'));
  await writeDecode(gpt2, path.join(outDir, 'hf_decode_gpt2.jsonl'));
  for (const [llamaPath, name] of llamaPaths.map((p, i) => [p, ['llama3', 'llama3_2'][i]])) {
    const llama = Tokenizer.fromFile(llamaPath);
    await write(llama, strings.concat(makeLlamaExtraStrings()),
                path.join(outDir, `hf_random_${name}.jsonl`));
    await writeDecode(llama, path.join(outDir, `hf_decode_${name}.jsonl`),
                      { first: 128000, count: 20 });
  }
})();
