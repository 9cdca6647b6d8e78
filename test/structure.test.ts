// The layers of src/, read from the code's own imports with the TypeScript compiler: no import cycle anywhere, and
// the layers only point down (docs/development.md "Layout"): nothing below the HTTP edge imports from src/http,
// and the shared layer imports from no other part of src.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/server.js';

const SRC = path.join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** file (relative to src/) -> the files of src/ it imports (type-only imports included: they tie modules too). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((s) => s.startsWith('.'))
      .map((s) => path.relative(SRC, path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts'))));
    graph.set(path.relative(SRC, file), [...new Set(targets)]);
  }
  return graph;
}

/** Every cycle, as a list of files (Tarjan's strongly connected components of size > 1, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const layer = (file: string) => file.split(path.sep)[0]!;

describe('structure of src/', () => {
  const graph = importGraph();

  it('reads the whole tree (sanity: the graph has the files and edges it should)', () => {
    expect(graph.size).toBeGreaterThan(30);
    expect(graph.get('main.ts')).toContain('lifecycle.ts');
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('nothing below the HTTP edge imports from src/http (writer, readers, checkpointer, replication, datafile, shared)', () => {
    const below = ['writer', 'readers', 'checkpointer', 'replication', 'datafile', 'shared'];
    const upward = [...graph].flatMap(([from, to]) =>
      below.includes(layer(from)) ? to.filter((t) => layer(t) === 'http').map((t) => `${from} -> ${t}`) : [],
    );
    expect(upward).toEqual([]);
  });

  it('the shared layer imports nothing else from src/', () => {
    const out = [...graph].flatMap(([from, to]) => (layer(from) === 'shared' ? to.filter((t) => layer(t) !== 'shared').map((t) => `${from} -> ${t}`) : []));
    expect(out).toEqual([]);
  });
});

describe('README "Layout" matches the tree', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));

  it('names every folder and top-level file of src/, and every file of src/http/ and src/shared/', () => {
    const entries = fs.readdirSync(SRC, { withFileTypes: true }).map((e) => (e.isDirectory() ? `src/${e.name}/` : `src/${e.name}`));
    const missing = entries.filter((e) => !layout.includes(e));
    for (const dir of ['http', 'shared', 'replication']) {
      for (const f of fs.readdirSync(path.join(SRC, dir))) if (f.endsWith('.ts') && f !== 'index.ts' && !layout.includes(f)) missing.push(`src/${dir}/${f}`);
    }
    expect(missing).toEqual([]);
  });

  it('names nothing in src/ that does not exist', () => {
    const named = [...layout.matchAll(/^src\/[\w/.-]+/gm)].map((m) => m[0]);
    expect(named.length).toBeGreaterThan(8);
    expect(named.filter((n) => !fs.existsSync(path.join(ROOT, n)))).toEqual([]);
  });
});
