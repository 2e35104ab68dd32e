// Bundles the card into the one module the integration serves, and prints its size.
// Deterministic: the same sources and pinned versions give the same bytes (CI compares).
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const out = "../custom_components/spotify_scrobbler/frontend/spotify-scrobbler-card.js";
await build({
  entryPoints: ["src/card.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  outfile: out,
  logLevel: "warning",
});
const bytes = readFileSync(out);
console.log(
  `${out}: ${(bytes.length / 1024).toFixed(1)} KiB, ${(gzipSync(bytes).length / 1024).toFixed(1)} KiB gzipped`,
);
