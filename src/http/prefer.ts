// `Prefer` (RFC 7240) on writes: only the `durability` preference means something here. Other preferences are
// ignored, as the RFC asks; an unknown durability value is a 400 rather than a guess, because silently applying
// `local` to a client that asked for something stronger would be a lie.
import type { HttpRequest } from 'uWebSockets.js';
import { DURABILITIES, type Durability } from '../shared/domain.js';
import { AppError } from '../shared/errors.js';
import { F, field } from './head-fields.js';

const VALUES: readonly string[] = DURABILITIES;

/** A write's durability, and whether the request named it (else DEFAULT_DURABILITY gave it). */
export type Dur = Readonly<{ durability: Durability; explicit: boolean }>;

/**
 * The durability a write asked for: from `Prefer: durability=local|replicated` (token or quoted string; the first
 * occurrence wins, per RFC 7240), else `fallback`. `explicit` says whether the request named it.
 */
export function parseDurability(header: string, fallback: Durability): Dur {
  if (header !== '') {
    for (const pref of header.split(',')) {
      // A preference is `name[=value]` followed by `;param` parts, which durability does not use.
      const head = pref.split(';', 1)[0]!;
      const eq = head.indexOf('=');
      const name = (eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase();
      if (name !== 'durability') continue;
      let value = eq < 0 ? '' : head.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      value = value.toLowerCase();
      if (!VALUES.includes(value)) {
        throw new AppError('validation_failed', 'invalid Prefer header', [
          { path: 'header.Prefer', message: `durability must be local or replicated, got ${JSON.stringify(value.slice(0, 64))}` },
        ]);
      }
      return NAMED[value as Durability];
    }
  }
  return DEFAULTED[fallback];
}

/** One frozen value per durability, made once: a write allocates nothing for its durability or its header. */
function perDurability<T extends object>(make: (d: Durability) => T): Readonly<Record<Durability, Readonly<T>>> {
  return Object.fromEntries(DURABILITIES.map((d) => [d, Object.freeze(make(d))])) as Record<Durability, Readonly<T>>;
}

const NAMED = perDurability((durability): Dur => ({ durability, explicit: true }));
const DEFAULTED = perDurability((durability): Dur => ({ durability, explicit: false }));

/**
 * Reads the request's durability (call while `req` is valid). `replicated` without a replica is refused: the
 * client asked for a guarantee this server cannot give.
 */
export function requestDurability(req: HttpRequest, fallback: Durability, replicated: boolean): Dur {
  const d = parseDurability(field(req, F.prefer), fallback);
  if (d.durability === 'replicated' && !replicated) throw new AppError('durability_unavailable');
  return d;
}

/** The Preference-Applied header for a 2xx answer (only when the client named a durability, or it is replicated). */
export function preferenceApplied(d: Dur): Readonly<Record<string, string>> | undefined {
  return d.explicit || d.durability === 'replicated' ? APPLIED[d.durability] : undefined;
}

const APPLIED = perDurability((durability): Record<string, string> => ({ 'Preference-Applied': `durability=${durability}` }));
