import { randomUUID } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { SILO_API, SILO_STUDY_API } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { send, snapshot, type HostileRequest, type RawAnswer } from './hostile-request.test-util';

/**
 * The hostile-input suite (issue 14, findings 8 and 10): malformed and oversized input on the people, enrollment and
 * silo listeners of a real hub. Every request must answer 4xx with a coded message (never 500: each 500 was an
 * error-level log line and, for NUL and deep nesting, reachable without signing in), and the database and the blob
 * store must be exactly as before.
 */

const DEPTH = 20_000;
const deepArray = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
const deepObject = (key: string) => `{"${key}":`.repeat(DEPTH) + '1' + '}'.repeat(DEPTH);
const NUL = '\\u0000';
const AUDITOR = { username: 'hostile-auditor', password: 'auditor password 12', role: 'auditor' } as const;

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe.each(DATABASE_KINDS)('hostile input on the %s database', (kind) => {
  let hub: TestHub;
  let silo: TestSilo;
  let admin: Record<string, string>;
  let auditor: Record<string, string>;
  let auditorId: string;
  let adminId: string;
  let plan: ReturnType<typeof heartDiseasePlan>;
  let studyId: string;
  let enrollmentToken: string;
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silo = await TestSilo.enroll(hub, admin, `Hostile ${kind}`);
    const created = await api(hub, 'POST', '/api/users', { headers: admin, json: AUDITOR });
    auditorId = (created.body as { id: string }).id;
    auditor = await signIn(hub, AUDITOR.username, AUDITOR.password);
    adminId = ((await api(hub, 'GET', '/api/auth/me', { headers: admin })).body as { id: string }).id;
    // A second silo registered but not enrolled: its token is live on the enrollment listener.
    const reg = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: `Pending ${kind}`, contact: 'x@example.org' },
    });
    enrollmentToken = (reg.body as { bundle: { token: string } }).bundle.token;
    plan = heartDiseasePlan([silo.id]);
    const study = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    expect(study.status).toBe(201);
    studyId = (study.body as { id: string }).id;
    expect((await api(hub, 'POST', `/api/studies/${studyId}/submit`, { headers: admin })).status).toBe(200);
    before = await snapshot(hub);
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  /** Each case: what is sent, and a pattern its message must match (it names the problem). */
  function cases(): [string, HostileRequest, RegExp][] {
    const login = (body: string, contentType?: string): HostileRequest => ({
      listener: 'people',
      method: 'POST',
      path: '/api/auth/login',
      body,
      ...(contentType ? { contentType } : {}),
    });
    const enroll = (body: string, contentType?: string): HostileRequest => ({
      listener: 'enroll',
      method: 'POST',
      path: SILO_API.enroll,
      body,
      ...(contentType ? { contentType } : {}),
    });
    const asAdmin = (method: string, path: string, body?: string): HostileRequest => ({
      listener: 'people',
      method,
      path,
      headers: admin,
      ...(body === undefined ? {} : { body }),
    });
    const decision = (body: string): HostileRequest => ({
      listener: 'silo',
      method: 'POST',
      path: SILO_STUDY_API.decision(studyId),
      body,
    });
    const planJson = JSON.stringify({ plan });
    const jwt = hub.app.get(JwtService);
    const claims = { sub: adminId, username: ADMIN.username, role: 'admin' };
    const tokens: [string, string][] = [
      ['alg none', `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`],
      ['another key', new JwtService({ secret: 'not the hub key' }).sign(claims)],
      ['HS512 with the hub key', jwt.sign(claims, { algorithm: 'HS512' })],
      ['expired', jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 })],
      ['unknown account', jwt.sign({ ...claims, sub: randomUUID() })],
      ['garbage', 'x'.repeat(10_000)],
    ];
    return [
      // Unauthenticated, people listener.
      ['login: NUL in the username', login(`{"username":"ad${NUL}min","password":"x"}`), /body\.username.*NUL/],
      ['login: 20,000 levels of arrays', login(`{"username":${deepArray},"password":"x"}`), /nests deeper/],
      ['login: 20,000 levels of objects', login(deepObject('a')), /nests deeper/],
      ['login: __proto__', login('{"username":"a","password":"b","__proto__":{"role":"admin"}}'), /__proto__/],
      [
        'login: constructor.prototype',
        login('{"username":"a","password":"b","constructor":{"prototype":{}}}'),
        /constructor/,
      ],
      ['login: a number beyond float64', login('{"username":1e400,"password":"x"}'), /body\.username is a number/],
      ['login: plain text', login('username=admin&password=x', 'text/plain'), /username/],
      ['login: an array', login('[]'), /request body must be a JSON object/],
      ['login: not JSON', login('{"username":'), /not valid JSON/],
      ['login: 2 MB', login(JSON.stringify({ username: 'a', password: 'p'.repeat(2 << 20) })), /larger/],
      // Sessions.
      ...tokens.map(([name, token]): [string, HostileRequest, RegExp] => [
        `session token: ${name}`,
        { listener: 'people', method: 'GET', path: '/api/users', headers: { authorization: `Bearer ${token}` } },
        /session/i,
      ]),
      // Role escalation by an auditor.
      [
        'auditor creates an administrator',
        {
          listener: 'people',
          method: 'POST',
          path: '/api/users',
          headers: auditor,
          body: JSON.stringify({ username: 'mallory', password: 'long enough pass 1', role: 'admin' }),
        },
        /role admin/,
      ],
      [
        'auditor promotes itself',
        {
          listener: 'people',
          method: 'PATCH',
          path: `/api/users/${auditorId}`,
          headers: auditor,
          body: '{"role":"admin"}',
        },
        /role admin/,
      ],
      [
        'auditor signs an audit checkpoint',
        { listener: 'people', method: 'POST', path: '/api/audit/checkpoints', headers: auditor },
        /role admin/,
      ],
      [
        'admin: role root',
        asAdmin('POST', '/api/users', '{"username":"rooty","password":"long enough pass 1","role":"root"}'),
        /role/,
      ],
      [
        'admin: role through __proto__',
        asAdmin(
          'POST',
          '/api/users',
          '{"username":"protoy","password":"long enough pass 1","__proto__":{"role":"admin"}}',
        ),
        /__proto__/,
      ],
      // Administrators' bodies and queries.
      [
        'plan with __proto__',
        asAdmin('POST', '/api/studies', planJson.replace('"training":{', '"training":{"__proto__":{"rounds":1000},')),
        /body\.plan\.training\.__proto__/,
      ],
      [
        'plan with a nested constructor key',
        asAdmin('POST', '/api/studies', planJson.replace('"schema":{', '"schema":{"constructor":{"name":"x"},')),
        /body\.plan\.schema\.constructor/,
      ],
      ['plan nested 20,000 deep', asAdmin('POST', '/api/studies', `{"plan":${deepObject('p')}}`), /nests deeper/],
      ['silo name with NUL', asAdmin('POST', '/api/silos', `{"name":"North${NUL}","contact":"a@example.org"}`), /NUL/],
      // Study pages: drafts keep the form as typed (jsonb), so what PostgreSQL cannot store must never reach it.
      ['draft form with NUL', asAdmin('POST', '/api/study-drafts', `{"form":{"name":"x${NUL}"},"step":0}`), /NUL/],
      [
        'draft form nested 20,000 deep',
        asAdmin('POST', '/api/study-drafts', `{"form":${deepObject('f')},"step":0}`),
        /nests deeper/,
      ],
      ['draft step beyond int32', asAdmin('POST', '/api/study-drafts', '{"form":{},"step":1e12}'), /step/],
      ['pause reason with NUL', asAdmin('POST', `/api/studies/${studyId}/pause`, `{"reason":"x${NUL}yz"}`), /NUL/],
      ['studies list archived filter with NUL', asAdmin('GET', '/api/studies?archived=only%00'), /archived/],
      ['audit cursor beyond int64', asAdmin('GET', '/api/audit/events?cursor=99999999999999999999'), /cursor/],
      ['audit cursor 2^63', asAdmin('GET', '/api/audit/events?cursor=9223372036854775808'), /cursor/],
      ['audit checkpoints after 10^20', asAdmin('GET', '/api/audit/checkpoints?after=100000000000000000000'), /after/],
      ['audit actor with NUL', asAdmin('GET', '/api/audit/events?actor=%00admin'), /query\.actor.*NUL/],
      ['audit query with __proto__', asAdmin('GET', '/api/audit/events?__proto__=1'), /__proto__/],
      // Enrollment listener (the internet-facing one).
      ['enroll: 20,000 levels', enroll(`{"token":${deepArray},"csrPem":"x"}`), /nests deeper/],
      ['enroll: NUL in the token', enroll(`{"token":"${enrollmentToken}${NUL}","csrPem":"x"}`), /NUL/],
      [
        'enroll: __proto__',
        enroll(`{"token":"${enrollmentToken}","csrPem":"x","__proto__":{"siloId":"x"}}`),
        /__proto__/,
      ],
      ['enroll: a huge number', enroll('{"token":123456789012345678901234567890,"csrPem":"x"}'), /number/],
      ['enroll: plain text', enroll(`token=${enrollmentToken}`, 'text/plain'), /token/],
      ['enroll: 2 MB', enroll(JSON.stringify({ token: enrollmentToken, csrPem: 'c'.repeat(2 << 20) })), /larger/],
      [
        'enroll: a forged CSR',
        enroll(
          JSON.stringify({
            token: enrollmentToken,
            csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----',
          }),
        ),
        /./,
      ],
      ['enroll: an admin route', { listener: 'enroll', method: 'GET', path: '/api/users', headers: admin }, /listener/],
      // Silo listener.
      [
        'silo: NUL in a decision reason',
        decision(`{"planHash":"${'a'.repeat(64)}","decision":"reject","reason":"no${NUL}"}`),
        /NUL/,
      ],
      [
        'silo: __proto__ in a decision',
        decision(`{"planHash":"${'a'.repeat(64)}","decision":"approve","__proto__":{"x":1}}`),
        /__proto__/,
      ],
      ['silo: decision nested 20,000 deep', decision(`{"reason":${deepArray}}`), /nests deeper/],
      [
        'silo: evaluation with 1e400',
        {
          listener: 'silo',
          method: 'POST',
          path: SILO_STUDY_API.evaluation(studyId, 1),
          body: '{"evaluation":{"loss":1e400}}',
        },
        /number/,
      ],
      [
        'silo: round number beyond int32',
        {
          listener: 'silo',
          method: 'POST',
          path: `/silo/v1/studies/${studyId}/rounds/99999999999999999999/failure`,
          body: '{"code":"INTERNAL","message":"x"}',
        },
        /./,
      ],
      [
        'silo: tasks wait with NUL',
        { listener: 'silo', method: 'GET', path: `${SILO_STUDY_API.tasks}?wait=%00` },
        /NUL/,
      ],
      ['silo: blob name with NUL', { listener: 'silo', method: 'GET', path: '/silo/v1/blobs/%00' }, /hash/],
      [
        'silo: an update as JSON',
        {
          listener: 'silo',
          method: 'POST',
          path: `/silo/v1/studies/${studyId}/rounds/1/update`,
          body: '{"delta":[1,2]}',
        },
        /octet-stream/,
      ],
      ['silo: an admin route', { listener: 'silo', method: 'GET', path: '/api/users', headers: admin }, /listener/],
    ];
  }

  it('answers every hostile request with 4xx and a message naming the problem, never 500', async () => {
    const failures: string[] = [];
    for (const [name, request, message] of cases()) {
      let answer: RawAnswer;
      try {
        answer = await send(hub, silo, request);
      } catch (err) {
        failures.push(`${name}: no answer (${(err as Error).message})`);
        continue;
      }
      const body = answer.body as { error?: unknown; message?: unknown; correlationId?: unknown };
      const ok =
        answer.status >= 400 &&
        answer.status < 500 &&
        typeof body.error === 'string' &&
        typeof body.message === 'string' &&
        typeof body.correlationId === 'string' &&
        message.test(body.message);
      if (!ok) failures.push(`${name}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
    }
    expect(failures).toEqual([]);
  });

  it('leaves the database and the blob store exactly as they were', async () => {
    expect(await snapshot(hub)).toEqual(before);
  });

  it('still serves the people it should afterwards', async () => {
    expect((await api(hub, 'GET', '/api/users', { headers: admin })).status).toBe(200);
    expect((await silo.call('GET', SILO_STUDY_API.studies)).status).toBe(200);
  });
});
