// Validates an AsyncAPI document with the AsyncAPI initiative's own parser: exits 1 on any
// error, printing every diagnostic.
//   node asyncapi-validate.mjs docs/asyncapi.yaml
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';

const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], 'utf8'));
const names = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${names[d.severity]} ${d.code} ${d.path.join('.')}: ${d.message}`);
}
if (!document || diagnostics.some((d) => d.severity === 0)) {
  process.exit(1);
}
console.log(
  `asyncapi ${document.version()}: ${document.channels().length} channels, ` +
    `${document.messages().length} messages`,
);
