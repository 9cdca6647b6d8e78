// The Cloud Run deployment, read with a YAML parser and checked against the server it deploys: deploy/cloudrun/service.yaml
// (service-level max instances, private by default, gen2, CPU always on, the startup probe's budget against the
// server's own start-up deadlines, a liveness probe that tolerates a busy main thread, the in-memory data volume and
// its size against the memory limit, the image registry, the runtime identity, only settings the server knows),
// cloudbuild.yaml (the deployer identity, logging, the image, substitutions that fill every placeholder) and
// deploy/cloudrun/setup.sh (the APIs and the least-privilege roles).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_NAMES, loadConfig } from '../src/shared/config.js';
import { ROOT } from './helpers/server.js';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');
type Y = Record<string, any>;

const service = parse(read('deploy/cloudrun/service.yaml')) as Y;
const build = parse(read('cloudbuild.yaml')) as Y;
const setup = read('deploy/cloudrun/setup.sh');
const template = service.spec.template as Y;
const container = template.spec.containers[0] as Y;
const env = new Map<string, Y>((container.env as Y[]).map((e) => [e.name as string, e]));
const plainEnv = Object.fromEntries([...env].filter(([, e]) => 'value' in e).map(([k, e]) => [k, String(e.value)]));

/** Kubernetes quantities as bytes: 1Gi, 512Mi, 1G, plain bytes. */
function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** Cloud Run's cap on a startup probe's failureThreshold x periodSeconds (and, separately, on initialDelaySeconds). */
const STARTUP_PROBE_MAX_S = 240;

describe('deploy/cloudrun/service.yaml', () => {
  it('is a Knative v1 Service with service-level maxScale 1 (and at most 1 per revision)', () => {
    expect(service).toMatchObject({ apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'sqlite-api' } });
    expect(service.metadata.annotations['run.googleapis.com/maxScale']).toBe('1');
    // The revision-level knob is not the one that counts during a deploy; if present, it must not allow more.
    const perRevision = template.metadata.annotations['autoscaling.knative.dev/maxScale'];
    if (perRevision !== undefined) expect(Number(perRevision)).toBeLessThanOrEqual(1);
  });

  it('is private by default (invoker IAM check on), and /metrics needs a token from Secret Manager either way', () => {
    const disabled = service.metadata.annotations['run.googleapis.com/invoker-iam-disabled'];
    expect([undefined, 'false']).toContain(disabled);
    expect(template.metadata.annotations['run.googleapis.com/invoker-iam-disabled']).toBeUndefined();
    expect(env.get('METRICS_TOKEN')).toMatchObject({ valueFrom: { secretKeyRef: { name: expect.any(String), key: expect.any(String) } } });
    // Nothing here makes it public behind the reader's back.
    expect(setup).not.toMatch(/allUsers|allAuthenticatedUsers|no-invoker-iam-check/);
  });

  it('gen2, CPU always allocated (Litestream uploads between requests and after SIGTERM), startup CPU boost', () => {
    expect(template.metadata.annotations).toMatchObject({
      'run.googleapis.com/execution-environment': 'gen2',
      'run.googleapis.com/cpu-throttling': 'false',
      'run.googleapis.com/startup-cpu-boost': 'true',
    });
  });

  it('the startup probe fits Cloud Run\'s 240 s cap and outlasts the server\'s own start-up deadlines (it gives up and logs why first)', () => {
    const p = container.startupProbe as Y;
    expect(p.httpGet).toMatchObject({ path: '/readyz', port: 8080 });
    expect(p.timeoutSeconds).toBeLessThanOrEqual(p.periodSeconds);
    expect(p.initialDelaySeconds ?? 0).toBe(0); // a delay would hold every cold start back by that much
    const budgetS = p.periodSeconds * p.failureThreshold;
    expect(budgetS).toBeLessThanOrEqual(STARTUP_PROBE_MAX_S);
    // The server's worst case, with the deadlines this file sets (or the defaults): the writer lease's first read, the
    // restore's dry run and the resume point's listing (each LITESTREAM_CONNECT_TIMEOUT_MS), the restore, and
    // Litestream's start and first sync; plus 10 s for the process, migrations and the listen.
    const cfg = loadConfig({ ...plainEnv, REPLICA_URL: 'gs://bucket-name/db' }).replication!;
    const serverWorstS = (3 * cfg.connectTimeoutMs + cfg.restoreTimeoutMs + cfg.startTimeoutMs) / 1000 + 10;
    console.log(`startup probe ${budgetS} s; server gives up within ${serverWorstS} s (restore deadline ${cfg.restoreTimeoutMs / 1000} s)`);
    expect(budgetS).toBeGreaterThanOrEqual(serverWorstS);
  });

  it('the liveness probe (/healthz, answered on the main thread) restarts only after minutes without an answer', () => {
    const p = container.livenessProbe as Y;
    expect(p.httpGet).toMatchObject({ path: '/healthz', port: 8080 });
    expect(p.timeoutSeconds).toBeLessThanOrEqual(p.periodSeconds);
    expect(p.timeoutSeconds).toBeGreaterThanOrEqual(5);
    expect(p.periodSeconds * p.failureThreshold).toBeGreaterThanOrEqual(120);
  });

  it('the database lives on an in-memory volume with a sizeLimit below the memory limit, mounted at DB_PATH\'s directory; DB_MAX_BYTES leaves room for the WAL and Litestream', () => {
    const vol = (template.spec.volumes as Y[]).find((v) => v.emptyDir);
    expect(vol).toBeDefined();
    expect(vol!.emptyDir.medium).toBe('Memory');
    const size = bytes(vol!.emptyDir.sizeLimit);
    const memory = bytes(container.resources.limits.memory);
    expect(size).toBeLessThan(memory);
    // The server and Litestream need memory of their own beside the volume.
    expect(memory - size).toBeGreaterThanOrEqual(512 * 2 ** 20);
    const mount = (container.volumeMounts as Y[]).find((m) => m.name === vol!.name);
    expect(mount?.mountPath).toBe(path.posix.dirname(plainEnv.DB_PATH!));
    // Litestream keeps up to a whole copy of the database beside it (the first sync's L0 file when it cannot resume).
    expect(Number(plainEnv.DB_MAX_BYTES)).toBeGreaterThan(0);
    expect(2 * Number(plainEnv.DB_MAX_BYTES)).toBeLessThan(size);
  });

  it('pulls from Artifact Registry, runs as the runtime service account, replicates to gs://, port 8080', () => {
    expect(container.image).toMatch(/^REGION-docker\.pkg\.dev\/PROJECT_ID\/[a-z0-9-]+\/server:/);
    expect(template.spec.serviceAccountName).toBe('sqlite-api@PROJECT_ID.iam.gserviceaccount.com');
    expect(container.ports).toEqual([{ name: 'http1', containerPort: 8080 }]);
    expect(plainEnv.REPLICA_URL).toMatch(/^gs:\/\/BUCKET\//);
  });

  it('sets only environment variables the server reads, each valid', () => {
    expect([...env.keys()].filter((n) => !ENV_NAMES.includes(n))).toEqual([]);
    expect(() => loadConfig({ ...plainEnv, REPLICA_URL: 'gs://bucket-name/db', METRICS_TOKEN: 'x'.repeat(32) })).not.toThrow();
  });
});

describe('cloudbuild.yaml', () => {
  it('runs as the dedicated deployer (not a default build account), logging to Cloud Logging as that requires', () => {
    expect(build.serviceAccount).toBe('projects/$PROJECT_ID/serviceAccounts/sqlite-api-deployer@$PROJECT_ID.iam.gserviceaccount.com');
    expect(build.options.logging).toBe('CLOUD_LOGGING_ONLY');
    expect(read('cloudbuild.yaml')).not.toMatch(/cloudbuild\.gserviceaccount\.com|compute@developer/);
  });

  it('builds, pushes and records the image in Artifact Registry, and deploys with gcloud run services replace', () => {
    expect(build.images).toEqual(['${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPO}/server:$BUILD_ID']);
    expect(build.steps.map((s: Y) => s.id)).toEqual(['build', 'push', 'deploy']);
    expect(build.steps[2].args.join(' ')).toContain('gcloud run services replace /workspace/service.yaml --region ${_REGION}');
  });

  it('its substitutions fill every placeholder of service.yaml, and the result still parses with the built image', () => {
    const deploy = build.steps[2].args.join(' ') as string;
    const subs: Record<string, string> = { ...build.substitutions, _BUCKET: 'my-bucket', $PROJECT_ID: 'my-project', $BUILD_ID: 'b123' };
    const fill = (s: string) => s.replace(/\$\{(_\w+)\}|\$(PROJECT_ID|BUILD_ID)/g, (_m, a, b) => subs[a ?? `$${b}`]!);
    const seds = [...deploy.matchAll(/-e "s\|([^|]+)\|([^|]*)\|(g?)"/g)].map((m) => ({ from: m[1]!.replace(/\$$/, ''), anchored: m[1]!.endsWith('$'), to: fill(m[2]!), g: m[3] === 'g' }));
    expect(seds.length).toBe(5);
    let text = read('deploy/cloudrun/service.yaml');
    for (const s of seds) {
      const re = new RegExp(s.from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + (s.anchored ? '$' : ''), s.g ? 'g' : s.anchored ? 'm' : '');
      text = s.anchored ? text.replace(new RegExp(re.source, 'gm'), s.to) : text.replace(re, s.to);
    }
    expect(text).not.toMatch(/PROJECT_ID|REGION|BUCKET/);
    const deployed = parse(text) as Y;
    expect(deployed.spec.template.spec.containers[0].image).toBe('europe-west1-docker.pkg.dev/my-project/sqlite-api/server:b123');
    expect(deployed.spec.template.spec.serviceAccountName).toBe('sqlite-api@my-project.iam.gserviceaccount.com');
    expect(deployed.metadata.labels['cloud.googleapis.com/location']).toBe('europe-west1');
  });
});

describe('deploy/cloudrun/setup.sh', () => {
  const lines = setup.split('\n');
  const grantsOf = (member: string) =>
    setup
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((l) => l.includes('add-iam-policy-binding') && l.includes(member));

  it('enables the APIs the deploy needs', () => {
    const enable = setup.replace(/\\\n\s*/g, ' ').split('\n').find((l) => l.includes('gcloud services enable'))!;
    for (const api of ['run', 'artifactregistry', 'cloudbuild', 'iam', 'storage', 'secretmanager']) expect(enable).toContain(`${api}.googleapis.com`);
  });

  it('the runtime account gets roles/storage.objectUser on the replica bucket only (never objectAdmin, nothing project-wide)', () => {
    const grants = grantsOf('serviceAccount:$RUNTIME');
    expect(grants.some((g) => g.includes('gcloud storage buckets add-iam-policy-binding "gs://$BUCKET"') && g.includes('--role=roles/storage.objectUser'))).toBe(true);
    expect(grants.some((g) => g.includes('gcloud secrets add-iam-policy-binding') && g.includes('roles/secretmanager.secretAccessor'))).toBe(true);
    expect(grants.filter((g) => g.includes('projects add-iam-policy-binding'))).toEqual([]);
    expect(setup).not.toMatch(/objectAdmin|roles\/run\.admin|roles\/editor|roles\/owner"/);
  });

  it('the deployer gets run.developer, logging.logWriter, artifactregistry.writer on the repository, serviceAccountUser on the runtime account only', () => {
    expect(setup).toMatch(/for role in roles\/run\.developer roles\/logging\.logWriter; do\s+gcloud projects add-iam-policy-binding "\$PROJECT_ID" --member="serviceAccount:\$DEPLOYER"/);
    const grants = grantsOf('serviceAccount:$DEPLOYER');
    expect(grants.some((g) => g.includes('gcloud artifacts repositories add-iam-policy-binding "$REPO"') && g.includes('roles/artifactregistry.writer'))).toBe(true);
    expect(grants.some((g) => g.includes('gcloud iam service-accounts add-iam-policy-binding "$RUNTIME"') && g.includes('roles/iam.serviceAccountUser'))).toBe(true);
    // The names the YAML files use.
    expect(lines.some((l) => l.startsWith('RUNTIME="sqlite-api@'))).toBe(true);
    expect(lines.some((l) => l.startsWith('DEPLOYER="sqlite-api-deployer@'))).toBe(true);
    expect(setup).toContain(`SECRET="${env.get('METRICS_TOKEN')!.valueFrom.secretKeyRef.name}"`);
  });
});

describe('deploy/cloudrun/service-follower.yaml (read followers, docs/followers.md)', () => {
  const follower = parse(read('deploy/cloudrun/service-follower.yaml')) as Y;
  const t = follower.spec.template as Y;
  const c = t.spec.containers[0] as Y;
  const fEnv = new Map<string, Y>((c.env as Y[]).map((e) => [e.name as string, e]));
  const fPlain = Object.fromEntries([...fEnv].filter(([, e]) => 'value' in e).map(([k, e]) => [k, String(e.value)]));

  it('a separate service that scales out and to zero, gen2, private, the same image and data volume as the writer', () => {
    expect(follower.metadata.name).not.toBe(service.metadata.name);
    expect(follower.metadata.annotations['run.googleapis.com/maxScale']).toBeUndefined();
    expect(follower.metadata.annotations['run.googleapis.com/invoker-iam-disabled']).toBeUndefined();
    expect(t.metadata.annotations['autoscaling.knative.dev/minScale']).toBe('0');
    expect(Number(t.metadata.annotations['autoscaling.knative.dev/maxScale'])).toBeGreaterThan(1);
    expect(t.metadata.annotations['run.googleapis.com/execution-environment']).toBe('gen2');
    expect(c.image).toBe(container.image);
    expect(t.spec.volumes).toEqual(template.spec.volumes);
    expect(bytes(t.spec.volumes[0].emptyDir.sizeLimit)).toBeLessThan(bytes(c.resources.limits.memory));
  });

  it('ROLE=follower with the writer\'s replica and URL, its own read-only identity, only settings the server knows, each valid', () => {
    expect(fPlain.ROLE).toBe('follower');
    expect(fPlain.REPLICA_URL).toBe(plainEnv.REPLICA_URL);
    expect(fPlain.WRITER_URL).toBe('WRITER_URL');
    expect(fPlain.WRITER_AUDIENCE).toBe('WRITER_URL');
    expect(t.spec.serviceAccountName).toBe('sqlite-api-reader@PROJECT_ID.iam.gserviceaccount.com');
    expect([...fEnv.keys()].filter((n) => !ENV_NAMES.includes(n))).toEqual([]);
    const cfg = loadConfig({ ...fPlain, REPLICA_URL: 'gs://bucket-name/db', WRITER_URL: 'https://sqlite-api-abc-ew.a.run.app', WRITER_AUDIENCE: 'https://sqlite-api-abc-ew.a.run.app', METRICS_TOKEN: 'x'.repeat(32) });
    expect(cfg.follower).not.toBeNull();
    expect(cfg.replication).toBeNull();
  });

  it('the startup probe gives the follower\'s restore the same budget as the writer\'s', () => {
    expect(c.startupProbe.httpGet.path).toBe('/readyz');
    expect(c.startupProbe.failureThreshold * c.startupProbe.periodSeconds).toBeLessThanOrEqual(STARTUP_PROBE_MAX_S);
    expect(c.startupProbe).toEqual(container.startupProbe);
  });

  it('setup.sh (FOLLOWERS=1): the reader account gets the bucket read-only, invoker on the writer service, nothing project-wide', () => {
    const grants = setup
      .replace(/\\\n\s*/g, ' ')
      .split('\n')
      .filter((l) => l.includes('add-iam-policy-binding') && l.includes('serviceAccount:$READER'));
    expect(grants.some((g) => g.includes('gcloud storage buckets add-iam-policy-binding "gs://$BUCKET"') && g.includes('--role=roles/storage.objectViewer'))).toBe(true);
    expect(grants.some((g) => g.includes('gcloud run services add-iam-policy-binding sqlite-api') && g.includes('--role=roles/run.invoker'))).toBe(true);
    expect(grants.filter((g) => g.includes('projects add-iam-policy-binding') || /objectUser|objectAdmin/.test(g))).toEqual([]);
    expect(setup).toContain('READER="sqlite-api-reader@${PROJECT_ID}.iam.gserviceaccount.com"');
  });
});
