// The whole suite by default; `npx mocha test/x.test.ts` runs only the files it names.
const named = process.argv.slice(2).some((a) => /\.test\.ts$/.test(a));
module.exports = {
  "node-option": ["import=tsx"],
  spec: named ? [] : ["test/**/*.test.ts"],
  timeout: 30000,
  exit: true,
  require: ["test/support/summary.ts"],
};
