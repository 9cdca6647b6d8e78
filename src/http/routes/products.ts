// /products: create, read, replace, update, delete, and list pages.
import type { WriteAnswer } from '../../shared/protocol.js';
import type { Exchange } from '../exchange.js';
import { idempotencyKey } from '../idempotency.js';
import { pathParam } from '../path-param.js';
import { createProductBody, listQuery, patchProductBody, productId, putProductBody } from '../schemas.js';
import { parse, parseDigits, type RouteKit } from './kit.js';
import type { Router } from './router.js';

const productReply = (ex: Exchange, status: number) => (r: WriteAnswer, headers?: Record<string, string>) =>
  ex.json(status, r.body, status === 201 ? { ...headers, Location: `/products/${r.id}` } : headers);

export function mountProducts(r: Router, { read, durability, write, withBody }: RouteKit): void {
  r.on('POST', '/products', (ex, req) => {
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, undefined, (body) =>
      write(ex, { op: 'createProduct', data: parse(createProductBody, body, 'body'), idem: idem?.(body) }, d, productReply(ex, 201)),
    );
  });
  r.on('GET', '/products', (ex, req) => {
    const query = parse(listQuery, Object.fromEntries(new URLSearchParams(req.getQuery() ?? '')), 'query');
    read(ex, { q: 'products', query });
  });
  r.on('GET', '/products/:id', (ex, req) => read(ex, { q: 'product', id: parseDigits(productId, pathParam(req, 0, 'id'), 'id') }));
  r.on('PUT', '/products/:id', (ex, req) => {
    const id = parseDigits(productId, pathParam(req, 0, 'id'), 'id');
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, undefined, (body) =>
      write(ex, { op: 'putProduct', id, data: parse(putProductBody, body, 'body'), idem: idem?.(body) }, d, productReply(ex, 200)),
    );
  });
  r.on('PATCH', '/products/:id', (ex, req) => {
    const id = parseDigits(productId, pathParam(req, 0, 'id'), 'id');
    const idem = idempotencyKey(req);
    const d = durability(req);
    withBody(ex, req, undefined, (body) =>
      write(ex, { op: 'patchProduct', id, data: parse(patchProductBody, body, 'body'), idem: idem?.(body) }, d, productReply(ex, 200)),
    );
  });
  r.on('DELETE', '/products/:id', (ex, req) => {
    const id = parseDigits(productId, pathParam(req, 0, 'id'), 'id');
    write(ex, { op: 'deleteProduct', id, idem: idempotencyKey(req)?.(null) }, durability(req), (_r, headers) => ex.json(204, null, headers));
  });
}
