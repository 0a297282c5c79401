import type { SiloStatus, SiloView } from '@tessera/protocol';

/** What the silos list shows: every silo, or those of one status. */
export type SiloStatusFilter = 'all' | SiloStatus;

export const SILO_STATUS_FILTERS: readonly { value: SiloStatusFilter; label: string }[] = [
  { value: 'all', label: 'All statuses' },
  { value: 'enrolled', label: 'Enrolled' },
  { value: 'registered', label: 'Awaiting enrollment' },
  { value: 'suspended', label: 'Suspended' },
];

/** Case- and accent-insensitive text for matching ("Zürich" matches "zurich"). */
function folded(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * The silos matching a search (every word must appear in the name, contact, id or agent version, in any order) and
 * a status, in the order given.
 */
export function filterSilos(silos: readonly SiloView[], query: string, status: SiloStatusFilter): SiloView[] {
  const words = folded(query).split(/\s+/).filter(Boolean);
  return silos.filter((s) => {
    if (status !== 'all' && s.status !== status) return false;
    if (words.length === 0) return true;
    const software = s.agent?.software;
    const haystack = folded([s.name, s.contact, s.id, software?.version ?? '', software?.platform ?? ''].join(' '));
    return words.every((w) => haystack.includes(w));
  });
}
