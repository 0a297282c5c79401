import { Injectable } from '@nestjs/common';
import type { AuditRecord } from '@tessera/audit';
import { auditActorKey, type AuditActorNames } from '@tessera/protocol';
import { AuditRepository } from './audit.repository';

/** What an auditor can filter the log by; every member optional, all of them combined with AND. */
export interface AuditEventFilter {
  /** Inclusive lower bound on the record time. */
  from?: Date;
  /** Exclusive upper bound on the record time. */
  to?: Date;
  /** Actor id (user id, silo id, system component) or actor name (username). */
  actor?: string;
  /** Action prefix: `silo.` matches every silo action, `silo.enrolled` that one (and longer names). */
  action?: string;
  studyId?: string;
  siloId?: string;
  /** Case-insensitive substring of the action or of the details' JSON text. */
  q?: string;
  /** Records up to and including this seq (a report's chain head). */
  upTo?: number;
}

export interface AuditEventPage {
  events: AuditRecord[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: number | null;
  /** A name for every actor of the page, by auditActorKey (resolved now; the records stay as hashed). */
  actorNames: AuditActorNames;
}

/** What the hub's own components are called on the audit page (actor type `system`, by id). */
const SYSTEM_COMPONENTS: Record<string, string> = {
  hub: 'Tessera hub',
  'silo-listener': 'Tessera hub (silo listener)',
  'enrollment-listener': 'Tessera hub (enrollment listener)',
  sessions: 'Tessera hub (sessions)',
  'blob-store': 'Tessera hub (blob store)',
  'privacy-ledger': 'Tessera hub (privacy ledger)',
  'login-backoff': 'Tessera hub (sign-in throttling)',
};

/**
 * An account or silo the hub does not hold: a failed sign-in under a username no account has (id `unknown`, the
 * name the person typed), or an id no longer stored.
 */
function unknownActorName(actor: AuditRecord['actor']): string {
  const kind = actor.type === 'user' ? 'account' : 'silo';
  if (actor.id === 'unknown') return actor.name === undefined ? `no such ${kind}` : `${actor.name} (no such ${kind})`;
  return actor.name ?? `unknown ${kind} ${actor.id}`;
}

/** A system actor's name: a known component's, else the id after "Tessera hub" (components added later). */
export function systemActorName(id: string): string {
  return SYSTEM_COMPONENTS[id] ?? `Tessera hub (${id})`;
}

export interface AuditPageRequest {
  limit: number;
  /** A seq: the page starts after it (in the chosen order). */
  cursor?: number;
  order: 'asc' | 'desc';
}

const CSV_BATCH = 1000;
const CSV_COLUMNS = [
  'seq',
  'time',
  'actor_type',
  'actor_id',
  'actor_name',
  'action',
  'study_id',
  'silo_id',
  'subject',
  'details',
  'prev_hash',
  'hash',
];

/**
 * One CSV field (RFC 4180). A cell that a spreadsheet would take for a formula (= + - @, tab, CR) is prefixed
 * with an apostrophe (OWASP "CSV injection"): silo names and usernames in the log come from outside.
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `actorName`: the name the hub resolved (AuditLogService.actorNames); the record's own otherwise. */
export function csvRow(r: AuditRecord, actorName?: string): string {
  return (
    [
      r.seq,
      r.time,
      r.actor.type,
      r.actor.id,
      actorName ?? r.actor.name,
      r.action,
      r.subject.studyId,
      r.subject.siloId,
      JSON.stringify(r.subject),
      JSON.stringify(r.details),
      r.prevHash,
      r.hash,
    ]
      .map(csvField)
      .join(',') + '\r\n'
  );
}

/** Read side of the audit log: filtered, paged listing and CSV export. */
@Injectable()
export class AuditLogService {
  constructor(private readonly chain: AuditRepository) {}

  async listEvents(filter: AuditEventFilter, page: AuditPageRequest): Promise<AuditEventPage> {
    // One record more than the page: whether there is a next page, without a count.
    const rows = await this.chain.eventPage(filter, { cursor: page.cursor, order: page.order, take: page.limit + 1 });
    const events = rows.slice(0, page.limit);
    const more = rows.length > page.limit;
    return {
      events,
      nextCursor: more ? events[events.length - 1]!.seq : null,
      actorNames: await this.actorNames(events),
    };
  }

  /**
   * Names every actor of these records: accounts by their current username, silos by their current name, the hub's
   * components by what they are. An id the hub no longer knows keeps the name the record carries, else says so.
   */
  async actorNames(records: readonly AuditRecord[]): Promise<AuditActorNames> {
    const ids = (type: 'user' | 'silo') => [
      ...new Set(records.filter((r) => r.actor.type === type).map((r) => r.actor.id)),
    ];
    const userIds = ids('user');
    const siloIds = ids('silo');
    const users = userIds.length ? await this.chain.usernames(userIds) : [];
    const silos = siloIds.length ? await this.chain.siloNames(siloIds) : [];
    const known = new Map<string, string>([
      ...users.map((u): [string, string] => [auditActorKey({ type: 'user', id: u.id }), u.name]),
      ...silos.map((s): [string, string] => [auditActorKey({ type: 'silo', id: s.id }), s.name]),
    ]);
    const names: AuditActorNames = {};
    for (const { actor } of records) {
      const key = auditActorKey(actor);
      if (key in names) continue;
      names[key] = actor.type === 'system' ? systemActorName(actor.id) : (known.get(key) ?? unknownActorName(actor));
    }
    return names;
  }

  /** The filtered events as CSV (header first, CRLF line ends), read in batches so memory stays bounded. */
  async *csv(filter: AuditEventFilter): AsyncGenerator<string> {
    yield CSV_COLUMNS.join(',') + '\r\n';
    let cursor: number | undefined;
    for (;;) {
      const page = await this.listEvents(filter, { limit: CSV_BATCH, cursor, order: 'asc' });
      if (page.events.length > 0) {
        yield page.events.map((r) => csvRow(r, page.actorNames[auditActorKey(r.actor)])).join('');
      }
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
    }
  }
}
