import type { SiloView } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { filterSilos } from './silo-filter.js';

function silo(name: string, status: SiloView['status'], extra: Partial<SiloView> = {}): SiloView {
  return {
    id: `00000000-0000-4000-8000-${String(name.length).padStart(12, '0')}`,
    name,
    contact: `it@${name.split(' ')[0]!.toLowerCase()}.example`,
    status,
    suspendedReason: null,
    lastSeenAt: null,
    createdAt: '2026-12-01T00:00:00.000Z',
    certificate: null,
    enrollmentPending: null,
    ...extra,
  };
}

const SILOS = [
  silo('University Hospitals Zürich and Basel', 'enrolled', {
    agent: {
      openRequests: 1,
      lastSeen: { silo: null, enroll: null },
      software: { version: '0.1.0', platform: 'linux-x64', node: '20.19.0' },
      task: null,
      offlineAfterSeconds: 40,
      observedAt: '2026-12-01T00:00:00.000Z',
    },
  }),
  silo('Cleveland Clinic Foundation', 'suspended'),
  silo('Hungarian Institute of Cardiology', 'registered'),
];

describe('filterSilos', () => {
  it('matches every word, in any order, in the name, contact, id or agent version, ignoring case and accents', () => {
    expect(filterSilos(SILOS, 'zurich', 'all').map((s) => s.name)).toEqual(['University Hospitals Zürich and Basel']);
    expect(filterSilos(SILOS, 'BASEL univ', 'all')).toHaveLength(1);
    expect(filterSilos(SILOS, 'cleveland.example', 'all').map((s) => s.status)).toEqual(['suspended']);
    expect(filterSilos(SILOS, '0.1.0', 'all')).toHaveLength(1);
    expect(filterSilos(SILOS, 'cardiology zurich', 'all')).toHaveLength(0);
    expect(filterSilos(SILOS, '   ', 'all')).toHaveLength(3);
  });

  it('keeps one status, and combines it with the search', () => {
    expect(filterSilos(SILOS, '', 'registered').map((s) => s.name)).toEqual(['Hungarian Institute of Cardiology']);
    expect(filterSilos(SILOS, 'hospital', 'enrolled')).toHaveLength(1);
    expect(filterSilos(SILOS, 'hospital', 'suspended')).toHaveLength(0);
  });
});
