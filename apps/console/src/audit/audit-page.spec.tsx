import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { AuditEventPageView, AuditEventQuery, AuditRecord } from '@tessera/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ApiClient, DownloadedFile } from '../api/api-client.js';
import { ApiError } from '../api/api-error.js';
import { renderWithSession } from '../auth/session.test-util.js';
import { AuditPage } from './audit-page.js';
import { formatAuditTime, toWallTimeInput, wallTimeToInstant } from './audit-time.js';

const SILO = '00000000-0000-4000-8000-00000000000a';
const USER = '00000000-0000-4000-8000-00000000000b';
const STUDY = '00000000-0000-4000-8000-00000000000c';

function record(seq: number, time: string, actor: AuditRecord['actor'], action: string): AuditRecord {
  return { seq, time, actor, action, subject: {}, details: {}, prevHash: '0'.repeat(64), hash: String(seq).repeat(64) };
}

// Two events either side of midnight in Zurich (23:30 UTC on 30 Nov is 00:30 on 1 Dec there).
const RECORDS = [
  record(3, '2026-11-30T23:30:07.000Z', { type: 'silo', id: SILO }, 'round.update.accepted'),
  record(2, '2026-11-30T22:59:59.000Z', { type: 'user', id: USER }, 'study.created'),
  record(1, '2026-11-30T08:00:00.000Z', { type: 'system', id: 'hub' }, 'audit.signing-key.created'),
];

/** The hub as the page sees it: it filters its records by the query's instants as the real one does. */
function fakeHub() {
  const page = (q: AuditEventQuery): AuditEventPageView => ({
    events: RECORDS.filter((r) => (!q.from || r.time >= q.from) && (!q.to || r.time < q.to)),
    nextCursor: null,
    actorNames: { [`silo:${SILO}`]: 'Northgate Clinic', [`user:${USER}`]: 'ada', 'system:hub': 'Tessera hub' },
  });
  const file = (name: string, head: DownloadedFile['head']): DownloadedFile => ({
    blob: new Blob(['x']),
    fileName: name,
    sha256: null,
    head,
  });
  return {
    auditEvents: vi.fn((q: AuditEventQuery) => Promise.resolve(page(q))),
    auditEventsCsv: vi.fn(),
    studies: vi.fn(() => Promise.resolve([{ id: STUDY, name: 'Heart', status: 'completed' }])),
    silos: vi.fn(() => Promise.resolve([])),
    verifyAudit: vi.fn(() =>
      Promise.resolve({
        ok: true,
        verifiedAt: '2026-12-01T10:00:00.000Z',
        records: 3,
        headSeq: 3,
        headHash: '3'.repeat(64),
        checkpoints: { total: 1, verified: 1 },
        firstBroken: null,
        problems: [],
      }),
    ),
    auditPublicKeys: vi.fn(() =>
      Promise.resolve([
        { keyId: 'f'.repeat(64), publicKeyPem: 'PEM', createdAt: '2026-11-30T08:00:00.000Z', current: true },
      ]),
    ),
    auditPublicKeyPem: vi.fn(() => Promise.resolve(file('hub-public.pem', undefined))),
    reportAvailability: vi.fn(() => Promise.resolve({ available: true })),
    reportFile: vi.fn((_id: string, name: string, upTo?: number) => {
      if (upTo === 1) return Promise.reject(new ApiError(409, 'CONFLICT', 'The study changed after #1'));
      return Promise.resolve(file(name, { seq: upTo ?? 7, hash: 'a'.repeat(64) }));
    }),
    refresh: vi.fn(),
    logout: vi.fn(() => Promise.resolve()),
  };
}

const ZURICH = 'Europe/Zurich';
let savedTz: string | undefined;
beforeAll(() => {
  savedTz = process.env.TZ;
  process.env.TZ = ZURICH;
  // jsdom has no object URLs; saving a file only needs one to exist.
  URL.createObjectURL = vi.fn(() => 'blob:x');
  URL.revokeObjectURL = vi.fn();
});
afterAll(() => {
  process.env.TZ = savedTz;
});
afterEach(() => {
  cleanup();
  window.localStorage.clear();
});

describe('audit times', () => {
  it('shows seconds, in UTC or with the browser zone offset at that instant', () => {
    expect(formatAuditTime('2026-11-30T23:30:07.000Z', 'utc')).toBe('2026-11-30 23:30:07 UTC');
    expect(formatAuditTime('2026-11-30T23:30:07.000Z', 'local')).toBe('2026-12-01 00:30:07 +01:00');
    expect(formatAuditTime('2026-07-01T12:00:00.000Z', 'local')).toBe('2026-07-01 14:00:00 +02:00');
  });

  it('reads a filter as a wall time in the zone shown, and refuses an hour that does not exist', () => {
    expect(wallTimeToInstant('2026-12-01T00:00', 'local')).toEqual({ ok: true, instant: '2026-11-30T23:00:00.000Z' });
    expect(wallTimeToInstant('2026-12-01T00:00:30', 'utc')).toEqual({ ok: true, instant: '2026-12-01T00:00:30.000Z' });
    expect(wallTimeToInstant('', 'utc')).toEqual({ ok: true, instant: undefined });
    // 29 March 2026, 02:30 is skipped in Zurich (clocks go from 02:00 to 03:00).
    expect(wallTimeToInstant('2026-03-29T02:30', 'local')).toMatchObject({ ok: false });
    expect(wallTimeToInstant('2026-02-30T10:00', 'utc')).toMatchObject({ ok: false });
    expect(wallTimeToInstant('tomorrow', 'utc')).toMatchObject({ ok: false });
    expect(toWallTimeInput('2026-11-30T23:00:00.000Z', 'local')).toBe('2026-12-01T00:00:00');
  });
});

describe('the audit page', () => {
  let hub: ReturnType<typeof fakeHub>;

  beforeEach(() => {
    hub = fakeHub();
    const { tree } = renderWithSession(<AuditPage />, { client: hub as unknown as ApiClient });
    render(tree);
  });

  it('names every actor and shows times to the second in the zone it names', async () => {
    const table = await screen.findByRole('table');
    expect(within(table).getByText('Northgate Clinic')).toBeTruthy();
    expect(within(table).getByText('ada')).toBeTruthy();
    expect(within(table).getByText('Tessera hub')).toBeTruthy();
    expect(within(table).getByRole('columnheader', { name: 'Time (UTC)' })).toBeTruthy();
    expect(screen.getAllByTestId('event-time')[0]!.textContent).toBe('2026-11-30 23:30:07 UTC');

    fireEvent.click(screen.getByRole('radio', { name: `${ZURICH} (this browser)` }));
    expect(within(table).getByRole('columnheader', { name: `Time (${ZURICH})` })).toBeTruthy();
    expect(screen.getAllByTestId('event-time')[0]!.textContent).toBe('2026-12-01 00:30:07 +01:00');
    expect(window.localStorage.getItem('tessera.audit.zone')).toBe('local');
  });

  it('filters across midnight in the zone shown: From inclusive, Before exclusive, sent as instants', async () => {
    await screen.findByRole('table');
    fireEvent.click(screen.getByRole('radio', { name: `${ZURICH} (this browser)` }));
    expect(screen.getByText(/Dates are in Europe\/Zurich \(this browser\), to the second/)).toBeTruthy();
    // From midnight on 1 December in Zurich: 23:00 UTC on 30 November; the event at 22:59:59 UTC is before it.
    fireEvent.change(screen.getByLabelText('From (inclusive)'), { target: { value: '2026-12-01T00:00:00' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply filters' }));
    await waitFor(() =>
      expect(hub.auditEvents).toHaveBeenLastCalledWith(expect.objectContaining({ from: '2026-11-30T23:00:00.000Z' })),
    );
    await waitFor(() => expect(screen.getAllByTestId('event-time')).toHaveLength(1));

    // Before 23:59:59 Zurich on 30 November = 22:59:59 UTC: the event at exactly that second is left out.
    fireEvent.change(screen.getByLabelText('From (inclusive)'), { target: { value: '' } });
    fireEvent.change(screen.getByLabelText('Before (exclusive)'), { target: { value: '2026-11-30T23:59:59' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply filters' }));
    await waitFor(() =>
      expect(hub.auditEvents).toHaveBeenLastCalledWith(expect.objectContaining({ to: '2026-11-30T22:59:59.000Z' })),
    );
    await waitFor(() => expect(screen.getAllByTestId('event-time')).toHaveLength(1));
    expect(screen.getAllByTestId('event-time')[0]!.textContent).toBe('2026-11-30 09:00:00 +01:00');

    // Switching the zone keeps the filter on the same instant: the field shows it in UTC now.
    fireEvent.click(screen.getByRole('radio', { name: 'UTC' }));
    // (jsdom writes a datetime-local value with milliseconds; browsers leave them out at zero.)
    expect(screen.getByLabelText<HTMLInputElement>('Before (exclusive)').value).toMatch(
      /^2026-11-30T22:59:59(\.000)?$/,
    );
  });

  it('says what is wrong with a date instead of dropping the filter', async () => {
    await screen.findByRole('table');
    const calls = hub.auditEvents.mock.calls.length;
    fireEvent.change(screen.getByLabelText('From (inclusive)'), { target: { value: '2026-12-02T00:00' } });
    fireEvent.change(screen.getByLabelText('Before (exclusive)'), { target: { value: '2026-12-01T00:00' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply filters' }));
    expect(await screen.findByText(/Before must be later than From/)).toBeTruthy();
    expect(hub.auditEvents.mock.calls.length).toBe(calls);
  });

  it("lists the hub's key with its fingerprint and downloads it as PEM", async () => {
    expect((await screen.findByTestId('key-fingerprint')).textContent).toBe('f'.repeat(64));
    fireEvent.click(screen.getByRole('button', { name: 'Download hub public key (PEM)' }));
    await waitFor(() => expect(hub.auditPublicKeyPem).toHaveBeenCalledTimes(1));
  });

  it('downloads every report format at the head the first download named, until moved on', async () => {
    await screen.findByRole('option', { name: 'Heart (completed)' });
    fireEvent.change(screen.getByLabelText('Report on study'), { target: { value: STUDY } });
    fireEvent.click(await screen.findByRole('button', { name: 'Download JSON (for verifiers)' }));
    await waitFor(() => expect(screen.getByTestId('report-head').textContent).toContain('up to record #7'));
    expect(hub.reportFile).toHaveBeenLastCalledWith(STUDY, 'report.json', undefined);
    fireEvent.click(screen.getByRole('button', { name: 'Download PDF (for people)' }));
    await waitFor(() => expect(hub.reportFile).toHaveBeenLastCalledWith(STUDY, 'report.pdf', 7));
    fireEvent.click(screen.getByRole('button', { name: 'Move to the current head' }));
    fireEvent.click(screen.getByRole('button', { name: 'Download CSV (for spreadsheets)' }));
    await waitFor(() => expect(hub.reportFile).toHaveBeenLastCalledWith(STUDY, 'report.csv', undefined));
  });
});
