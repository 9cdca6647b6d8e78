// The request mixes, as autocannon request lists. Every factory returns fresh state per run.
// Ids are chosen so a correct server answers every request with 2xx: reads and updates touch seeded ids
// that are never deleted, deletes take ids nobody else touches.
import type { Request } from 'autocannon';
import { HOT_COUNTER, SEED_PRODUCTS } from './seed.js';

/** A new object each time: autocannon writes Content-Length into the headers object it is given. */
const jsonHeaders = () => ({ 'content-type': 'application/json' });
const NEW_PRODUCT = JSON.stringify({ name: 'bench product', price: 9.99, description: 'created by the benchmark', stock: 5 });
const randInt = (n: number) => Math.floor(Math.random() * n);

export interface Workload {
  name: string;
  describe: string;
  requests: () => Request[];
}

export const hotRead: Workload = {
  name: 'hot-read',
  describe: `GET /counters/${HOT_COUNTER}`,
  requests: () => [{ method: 'GET', path: `/counters/${HOT_COUNTER}` }],
};

export const increment = (counter: string): Workload => ({
  name: 'increment',
  describe: `POST /counters/${counter}/increment {"by":1}`,
  requests: () => [{ method: 'POST', path: `/counters/${counter}/increment`, headers: jsonHeaders(), body: '{"by":1}' }],
});

export const createProduct: Workload = {
  name: 'create',
  describe: 'POST /products (a 4-field product)',
  requests: () => [{ method: 'POST', path: '/products', headers: jsonHeaders(), body: NEW_PRODUCT }],
};

/**
 * Random paths drawn up front: autocannon builds a static request's bytes once, but calls a `setupRequest` and
 * rebuilds the request every time, which saturated its core at ~12k req/s here (measuring the generator, not
 * the server); 64 drawn paths gave 20k in the same session. Each connection builds all of them when it starts
 * (2,048 stalled the start of a run by 2 s) and then cycles through them.
 */
const RANDOM_PATHS = 64;
const randomGets = (path: () => string): Request[] => Array.from({ length: RANDOM_PATHS }, () => ({ method: 'GET', path: path() }));

export const getProduct: Workload = {
  name: 'get-by-id',
  describe: `GET /products/{random id in 1..${SEED_PRODUCTS}} (${RANDOM_PATHS} ids drawn per run)`,
  requests: () => randomGets(() => `/products/${1 + randInt(SEED_PRODUCTS)}`),
};

export const listPage: Workload = {
  name: 'list',
  describe: `GET /products?limit=20 with a random offset (half) or a random after= cursor (half) (${RANDOM_PATHS} pages drawn per run)`,
  requests: () =>
    randomGets(() => {
      const at = randInt(SEED_PRODUCTS - 20);
      return Math.random() < 0.5 ? `/products?limit=20&offset=${at}` : `/products?limit=20&after=${at}`;
    }),
};

/** Seeded ids at or below this are read and updated, never deleted; the ones above are delete stock. */
const STABLE_IDS = SEED_PRODUCTS - 1000;

export const CRUD_MIX_DESCRIPTION = 'list 40% (limit 20, random offset/after) / get 30% / create 15% / PATCH 10% / delete 5%';

/**
 * The Locust user of the FastAPI example: list with random pagination 40%, get 30%, create 15%,
 * update (PATCH) 10%, delete 5%. Deletes take a seeded id above STABLE_IDS or an id this mix created.
 * Make one per trial (one database copy): the warm-up and the measured run share what has been deleted.
 */
export function makeCrudMix(): Workload {
  const seeded: number[] = [];
  for (let id = STABLE_IDS + 1; id <= SEED_PRODUCTS; id++) seeded.push(id);
  for (let i = seeded.length - 1; i > 0; i--) {
    const j = randInt(i + 1);
    [seeded[i], seeded[j]] = [seeded[j]!, seeded[i]!];
  }
  const created: number[] = [];
  const takeDeletable = (): number | undefined =>
    created.length > 0 && (seeded.length === 0 || Math.random() < 0.5) ? created.pop() : seeded.pop();
  return {
    name: 'crud-mix',
    describe: CRUD_MIX_DESCRIPTION,
    // autocannon deep-copies the request list per connection; the functions (and so this state) are shared.
    requests: () => [
      {
        setupRequest: (req, ctx) => {
          const r = Math.random();
          req.headers = {};
          req.body = '';
          let op: string;
          const victim = r >= 0.95 ? takeDeletable() : undefined;
          if (r < 0.4) {
            op = 'list';
            const at = randInt(STABLE_IDS);
            req.method = 'GET';
            req.path = Math.random() < 0.5 ? `/products?limit=20&offset=${at}` : `/products?limit=20&after=${at}`;
          } else if (r < 0.7) {
            op = 'get';
            req.method = 'GET';
            req.path = `/products/${1 + randInt(STABLE_IDS)}`;
          } else if (r < 0.85) {
            op = 'create';
            req.method = 'POST';
            req.path = '/products';
            req.headers = jsonHeaders();
            req.body = NEW_PRODUCT;
          } else if (r < 0.95 || victim === undefined) {
            op = 'update';
            req.method = 'PATCH';
            req.path = `/products/${1 + randInt(STABLE_IDS)}`;
            req.headers = jsonHeaders();
            req.body = `{"price":${randInt(100_000) / 100},"stock":${randInt(1000)}}`;
          } else {
            op = 'delete';
            req.method = 'DELETE';
            req.path = `/products/${victim}`;
          }
          ctx.op = op;
          return req;
        },
        onResponse: (status, body, ctx) => {
          if (ctx.op === 'create' && status === 201) {
            const m = /"id":(\d+)/.exec(body);
            if (m) created.push(Number(m[1]));
          }
        },
      },
    ],
  };
}
