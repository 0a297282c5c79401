import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initialParameters } from '@tessera/ml';
import { decodeUpdateFrame, type SiloStudy } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli';
import { buildPlan, buildStudy, buildTask, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { answerJson, startTlsTestHub, type TlsTestHub } from '../testing/tls-hub.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';

let hub: TlsTestHub;
let files: string;

beforeAll(async () => {
  hub = await startTlsTestHub();
  files = mkdtempSync(join(tmpdir(), 'tessera-run-'));
  writeFileSync(join(files, 'data.csv'), readHeartDisease('processed.hungarian.data'));
  const plan = buildPlan();
  writeFileSync(
    join(files, 'policy.json'),
    JSON.stringify({
      autoApprove: {
        models: ['logistic-regression'],
        allowedColumns: [...plan.schema.features.map((f) => f.name), plan.schema.label.column],
        maxRounds: 3,
        privacyRequired: false,
        maxEpsilon: 10,
      },
    }),
  );
});

afterAll(() => hub.close());

function cli(args: string[], onStop?: (stop: () => void) => void) {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(['--state-dir', hub.state.root, ...args], {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: {},
    onStopSignal: (handler) => {
      onStop?.(handler);
      return () => undefined;
    },
  });
  return { code, out, err };
}

describe('tessera-agent run (real mutual TLS, scripted hub)', () => {
  it('approves by policy, trains one round, uploads, stores the receipt, and exits 0 when the study completes', async () => {
    const study: SiloStudy = buildStudy(buildPlan(), { status: 'awaiting_approvals' });
    const blob = modelBlob(initialParameters(modelSpecOf(study.plan), 3));
    let taskGiven = false;
    hub.handle((req, res, body) => {
      const url = req.url ?? '';
      if (url === '/silo/v1/studies') return answerJson(res, 200, [study]);
      if (url.endsWith('/decision')) {
        const request = JSON.parse(body.toString()) as { planHash: string };
        if (request.planHash !== study.planHash) return answerJson(res, 409, { error: 'CONFLICT', message: 'stale' });
        study.status = 'running';
        study.decision = {
          planHash: study.planHash,
          planVersion: 1,
          decision: 'approve',
          decidedAt: new Date().toISOString(),
        };
        return answerJson(res, 200, study);
      }
      if (url.startsWith('/silo/v1/tasks')) {
        const tasks = taskGiven || study.status !== 'running' ? [] : [buildTask(study, blob.hash)];
        taskGiven = true;
        return answerJson(res, 200, { tasks });
      }
      if (url === `/silo/v1/blobs/${blob.hash}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return res.end(Buffer.from(blob.bytes));
      }
      if (url.endsWith('/rounds/1/update')) {
        const { header } = decodeUpdateFrame(body);
        study.status = 'completed';
        return answerJson(res, 200, {
          studyId: study.studyId,
          siloId: hub.state.loadIdentity().record.siloId,
          round: 1,
          attempt: 1,
          updateSha256: header.payloadSha256,
          receivedAt: new Date().toISOString(),
        });
      }
      answerJson(res, 404, { error: 'NOT_FOUND', message: url });
    });

    const run = cli([
      'run',
      '--data',
      join(files, 'data.csv'),
      '--policy',
      join(files, 'policy.json'),
      '--poll-wait',
      '1',
      '--exit-after-study',
      study.studyId,
    ]);
    expect(await run.code).toBe(0);
    const log = run.out.join('');
    expect(run.err.join('')).toBe('');
    expect(log).toMatch(/agent: silo Test silo .* tfjs backend (tensorflow|wasm|cpu)\n/);
    expect(log).toMatch(/Heart disease LR: approved plan version 1 \(\w{12}…\) by policy/);
    expect(log).toMatch(/Heart disease LR round 1: trained 1 local epoch\(s\), \d+ steps on \d+ records/);
    expect(log).toMatch(/Heart disease LR: study completed; exiting\n$/);
    expect(existsSync(join(hub.state.root, 'receipts', study.studyId, '1-1.json'))).toBe(true);
    const approvals = JSON.parse(readFileSync(join(hub.state.root, 'approvals.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(approvals[study.studyId]).toMatchObject({ planHash: study.planHash, decidedBy: 'policy' });
  });

  it('stops cleanly with exit code 0 at SIGTERM during a long poll', async () => {
    let stop: (() => void) | undefined;
    hub.handle((req, res) => {
      if (req.url === '/silo/v1/studies') return answerJson(res, 200, []);
      if (req.url?.startsWith('/silo/v1/tasks')) {
        stop?.(); // the signal arrives while the poll is waiting; the hub never answers it
        return;
      }
      answerJson(res, 404, { error: 'NOT_FOUND', message: 'no' });
    });
    const run = cli(['run', '--data', join(files, 'data.csv'), '--poll-wait', '20'], (handler) => {
      stop = handler;
    });
    expect(await run.code).toBe(0);
    expect(run.out.join('')).toMatch(/stopping after the current step\n.*agent: stopped\n$/);
  });
});
