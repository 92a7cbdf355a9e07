// Oracle for text_hf_compat: loads a tokenizer.json we wrote with Hugging Face's own tokenizers
// (the Rust library that transformers' fast tokenizers run on) and checks that it encodes and
// decodes every case as we did. Usage: node hf_compat.js TOKENIZER_JSON CASES_JSONL, each case
// {"text", "ids", "decoded"}. Prints a summary; exits 0 only when everything agrees.
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

(async () => {
  const tokenizer = Tokenizer.fromFile(process.argv[2]);
  let total = 0, same = 0;
  for (const line of fs.readFileSync(process.argv[3], 'utf8').split('\n')) {
    if (!line) continue;
    const c = JSON.parse(line);
    const ids = (await tokenizer.encode(c.text, null, { addSpecialTokens: false })).getIds();
    const decoded = await tokenizer.decode(c.ids, false);
    ++total;
    if (JSON.stringify(ids) === JSON.stringify(c.ids) && decoded === c.decoded) {
      ++same;
    } else if (total - same <= 5) {
      console.log('differs:', JSON.stringify(c.text), '\n  hf :', JSON.stringify(ids),
                  '\n  ours:', JSON.stringify(c.ids));
    }
  }
  console.log(`Hugging Face tokenizers loaded ${process.argv[2]} (vocab ${tokenizer.getVocabSize(true)}): ` +
              `${same}/${total} cases identical`);
  process.exit(same === total && total > 0 ? 0 : 1);
})().catch((e) => { console.log('Hugging Face tokenizers failed:', e.message); process.exit(1); });
