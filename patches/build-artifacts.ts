// Writes every baseline and patch the examples check in. Run after changing an example's sources
// (and its build.sh) or prepare/diff themselves: npx tsx patches/build-artifacts.ts
import { writeFileSync } from 'node:fs';
import { artifacts } from './examples.js';

for (const artifact of artifacts) {
  const bytes = await artifact.make();
  writeFileSync(new URL(artifact.path, import.meta.url), bytes);
  console.log(`wrote patches/${artifact.path} (${bytes.length} bytes)`);
}
