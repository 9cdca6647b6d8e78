// /counters: read a counter, increment it.
import { idempotencyKey } from '../idempotency.js';
import { pathParam } from '../path-param.js';
import { counterName, incrementBody } from '../schemas.js';
import { parse, type RouteKit } from './kit.js';
import type { Router } from './router.js';

export function mountCounters(r: Router, { read, durability, write, withBody }: RouteKit): void {
  r.on('GET', '/counters/:name', (ex, req) => read(ex, { q: 'counter', name: parse(counterName, pathParam(req, 0, 'name'), 'name') }));
  r.on('POST', '/counters/:name/increment', (ex, req) => {
    const name = parse(counterName, pathParam(req, 0, 'name'), 'name');
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, {}, (body) => {
      const { by } = parse(incrementBody, body, 'body');
      write(ex, { op: 'increment', name, by: by ?? 1, idem: idem?.(body) }, d, (res, headers) => ex.json(200, res.body, headers));
    });
  });
}
