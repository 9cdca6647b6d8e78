// The documentation stays true to the code it describes: every variable the server reads is in
// docs/configuration.md (and nothing there is unread), every npm script is in a docs/ table, every relative link
// in README.md and docs/ resolves (file and #anchor), and the README stays a five-minute read.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENV_NAMES } from '../src/shared/config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOCS = path.join(ROOT, 'docs');
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const docPages = fs
  .readdirSync(DOCS)
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => `docs/${f}`);

/** The text outside fenced code blocks, line by line (a `# comment` in a shell block is not a heading). */
function proseLines(text: string): string[] {
  const out: string[] = [];
  let fence: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      const marker = m[1]!;
      if (fence === null) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = null;
      continue;
    }
    if (fence === null) out.push(line);
  }
  return out;
}

/** GitHub's heading anchor: lowercase, punctuation dropped except '-' and '_', each space a '-'. */
function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link in a heading keeps its text
    .replace(/<[^>]+>/g, '') // inline HTML tags
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a markdown file offers: heading slugs (duplicates get -1, -2, ...) and explicit `<a id>`/`<a name>`. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(text)) {
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const base = githubSlug(h[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const a of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(a[1]!);
  }
  return anchors;
}

/** Link targets in a markdown file (inline links and images), outside code blocks and code spans. */
function linksOf(text: string): string[] {
  const links: string[] = [];
  for (const line of proseLines(text)) {
    const noCode = line.replace(/`[^`]*`/g, '');
    for (const m of noCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push(m[1]!);
  }
  return links;
}

/** Problems with the relative links of one markdown file: a missing file, or an anchor no heading has. */
function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  for (const link of linksOf(read(file))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:, ...
    const hash = link.indexOf('#');
    const target = hash === -1 ? link : link.slice(0, hash);
    const anchor = hash === -1 ? null : decodeURIComponent(link.slice(hash + 1));
    const resolved = target === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(target));
    if (!resolved.startsWith(ROOT + path.sep) || !fs.existsSync(resolved)) {
      problems.push(`${file}: ${link}: no such file`);
      continue;
    }
    if (anchor !== null && resolved.endsWith('.md')) {
      if (!anchorsOf(fs.readFileSync(resolved, 'utf8')).has(anchor)) problems.push(`${file}: ${link}: no such heading`);
    }
  }
  return problems;
}

/** Variable names in the first column of docs/configuration.md's tables, in backticks. */
function documentedVariables(): string[] {
  const names: string[] = [];
  for (const line of proseLines(read('docs/configuration.md'))) {
    const m = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/.exec(line);
    if (m) names.push(m[1]!);
  }
  return names;
}

describe('documentation', () => {
  it('the slug rules match GitHub', () => {
    expect(githubSlug('Deploy to Cloud Run, with the database in Cloud Storage')).toBe('deploy-to-cloud-run-with-the-database-in-cloud-storage');
    expect(githubSlug('5. Restore to a point in time')).toBe('5-restore-to-a-point-in-time');
    expect(githubSlug('`npm` scripts & CI_x')).toBe('npm-scripts--ci_x');
  });

  it('docs/configuration.md documents exactly the variables the server reads, once each', () => {
    const documented = documentedVariables();
    expect(documented.length).toBeGreaterThan(0);
    const readNames = new Set(ENV_NAMES);
    expect({
      'read by src/shared/config.ts but not documented': ENV_NAMES.filter((n) => !documented.includes(n)),
      'documented but not read by src/shared/config.ts': documented.filter((n) => !readNames.has(n)),
      'documented twice': documented.filter((n, i) => documented.indexOf(n) !== i),
    }).toEqual({
      'read by src/shared/config.ts but not documented': [],
      'documented but not read by src/shared/config.ts': [],
      'documented twice': [],
    });
  });

  it('every npm script in package.json is in a table in docs/', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const rows = docPages.flatMap((f) => proseLines(read(f)).filter((l) => l.trimStart().startsWith('|'))).join('\n');
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const missing = scripts.filter((name) => {
      const forms = [`\`npm run ${esc(name)}(?![\\w:.-])`];
      if (name === 'start' || name === 'test') forms.push(`\`npm ${name}\``);
      // A lifecycle hook (prestart, posttest, ...) npm runs by itself: named in backticks.
      const hookOf = /^(?:pre|post)(.+)$/.exec(name)?.[1];
      if (hookOf !== undefined && scripts.includes(hookOf)) forms.push(`\`${esc(name)}\``);
      return !forms.some((f) => new RegExp(f).test(rows));
    });
    expect(missing).toEqual([]);
  });

  it('every relative link in README.md and docs/ points at a file (and heading) that exists', () => {
    const files = ['README.md', ...docPages];
    expect(files.flatMap((f) => linksOf(read(f))).length).toBeGreaterThan(10);
    expect(files.flatMap((f) => brokenLinks(f))).toEqual([]);
  });

  it('README.md links every docs/ page', () => {
    const linked = new Set(linksOf(read('README.md')).map((l) => l.split('#')[0]));
    expect(docPages.filter((f) => !linked.has(f))).toEqual([]);
  });

  it('README.md stays under 16 KB', () => {
    expect(fs.statSync(path.join(ROOT, 'README.md')).size).toBeLessThan(16 * 1024);
  });
});
