// Checks what Teams is sent and uploaded, with Microsoft's own packages
// (pinned in tools/package.json):
//   - every golden card in teams/testdata/*.card.json parses with the
//     adaptivecards package (the renderer's object model) with no error or
//     warning, and validates without a failure; a broken control card must
//     fail, so that the check is known to bite;
//   - teams-app/manifest.json validates against the Teams manifest JSON
//     schema of its manifestVersion, bundled in @microsoft/app-manifest.
// Usage: node tools/teams-check.mjs   (from the repository root; exit 1 on any problem)
import { createRequire } from "node:module";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const require = createRequire(join(process.cwd(), "tools", "package.json"));
// The package's lib/ is ES modules with extensionless imports, which Node
// cannot load; dist/ is its UMD bundle.
const AC = require("adaptivecards/dist/adaptivecards.js");
// The manifest package's index needs fs-extra, which it does not declare;
// its schema check is ajv (draft-04) with ajv-formats, its declared
// dependencies, used here as it uses them.
const manifestRequire = createRequire(require.resolve("@microsoft/app-manifest/package.json"));
const AjvDraft04 = manifestRequire("ajv-draft-04").default;
const addFormats = manifestRequire("ajv-formats").default;

function manifestProblemsOf(manifest, schema) {
  const ajv = new AjvDraft04({ allErrors: true, strictTypes: false });
  addFormats(ajv, ["uri", "email", "regex"]);
  const validate = ajv.compile(schema);
  if (validate(manifest)) return [];
  return validate.errors.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}

function cardProblems(json) {
  const problems = [];
  const ctx = new AC.SerializationContext();
  ctx.targetVersion = AC.Versions.v1_5;
  const card = new AC.AdaptiveCard();
  card.parse(json, ctx);
  // Every event of parsing is an error or a warning (phase Parse), and so
  // is every event of validation: none is allowed.
  for (let i = 0; i < ctx.eventCount; i++) {
    const e = ctx.getEventAt(i);
    problems.push(`parse: ${AC.ValidationEvent[e.event] ?? e.event}: ${e.message}`);
  }
  for (const e of card.validateProperties().validationEvents) {
    problems.push(`validate: ${AC.ValidationEvent[e.event] ?? e.event}: ${e.message}`);
  }
  if (json.version !== "1.5") problems.push(`version ${json.version}, want 1.5`);
  return problems;
}

let failed = 0;
const dir = "teams/testdata";
const cards = readdirSync(dir).filter((f) => f.endsWith(".card.json")).sort();
if (cards.length === 0) {
  console.error(`no cards in ${dir}`);
  process.exit(1);
}
for (const f of cards) {
  const problems = cardProblems(JSON.parse(readFileSync(join(dir, f), "utf8")));
  if (problems.length) {
    failed++;
    console.error(`card ${f}:\n  ${problems.join("\n  ")}`);
  } else {
    console.log(`card ${f}: ok`);
  }
}

// The negative control: an unknown element, an Action.Execute-less
// unknown action and a bad version must be reported.
const control = {
  type: "AdaptiveCard", version: "1.5",
  body: [{ type: "TextBlok", text: "typo" }, { type: "Input.Text" }],
  actions: [{ type: "Action.Explode", title: "x" }],
};
if (cardProblems(control).length === 0) {
  failed++;
  console.error("control: a broken card passed the card check; the check does not bite");
} else {
  console.log(`control: broken card refused (${cardProblems(control).length} problems)`);
}

// The manifest against the schema of its version, from the package (no network).
const manifest = JSON.parse(readFileSync("teams-app/manifest.json", "utf8"));
const schemaPath = require.resolve(`@microsoft/app-manifest/build/json-schemas/teams/v${manifest.manifestVersion}/MicrosoftTeams.schema.json`);
// The schemas hold "\a" in a pattern, which JavaScript's RegExp refuses
// (microsoft-teams-app-schema issue 190); the package's own loader swaps it too.
const schema = JSON.parse(readFileSync(schemaPath, "utf8").replace(/\\a/g, "\\x07"));
const manifestProblems = manifestProblemsOf(manifest, schema);
if (manifestProblems.length) {
  failed++;
  console.error(`teams-app/manifest.json:\n  ${manifestProblems.join("\n  ")}`);
} else {
  console.log(`teams-app/manifest.json: valid against the v${manifest.manifestVersion} schema`);
}
const broken = { ...manifest, bots: [{ botId: "not-a-guid", scopes: ["nowhere"] }] };
if (manifestProblemsOf(broken, schema).length === 0) {
  failed++;
  console.error("control: a broken manifest passed the schema check; the check does not bite");
} else {
  console.log("control: broken manifest refused");
}
if (failed) process.exit(1);
