import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { HUB_API, type StudyLiveMessage } from '@tessera/protocol';
import { apiErrorOf } from '../api/api-error.js';
import { readEventStream } from '../api/event-stream-reader.js';
import { useSession } from '../auth/session-context.js';
import { roundInProgress } from '../lib/round-metrics.js';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'finished' | 'unavailable';

const TERMINAL = new Set(['completed', 'stopped', 'failed']);
const RETRY_MS = [1_000, 2_000, 5_000, 10_000];

/**
 * Follows a study as it runs: reads GET /api/studies/:id/events (server-sent events) with fetch() so the bearer
 * token goes in a header, and writes each message into the query cache (['study', id] and ['rounds', id]). It
 * reconnects with backoff, and stops once the study has ended and its last round closed.
 */
export function useStudyLive(studyId: string, enabled: boolean): { state: LiveState; lastMessageAt: string | null } {
  const { session, signOut } = useSession();
  const queryClient = useQueryClient();
  const [state, setState] = useState<LiveState>('connecting');
  const [lastMessageAt, setLastMessageAt] = useState<string | null>(null);
  const token = session?.token ?? null;

  useEffect(() => {
    if (!enabled || !token) return;
    const abort = new AbortController();
    let failures = 0;
    let finished = false;

    async function connectOnce(): Promise<void> {
      const res = await fetch(HUB_API.studyEvents(studyId), {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal: abort.signal,
        cache: 'no-store',
      });
      if (!res.ok || !res.body) {
        const err = await apiErrorOf(res);
        if (res.status === 401) signOut('Your session expired. Please sign in again.');
        throw err;
      }
      setState('live');
      failures = 0;
      await readEventStream(res.body, (data) => {
        const message = JSON.parse(data) as StudyLiveMessage;
        if (message.type !== 'study') return;
        queryClient.setQueryData(['study', studyId], message.study);
        queryClient.setQueryData(['rounds', studyId], message.rounds);
        setLastMessageAt(message.at);
        const open = message.rounds.some(roundInProgress);
        if (TERMINAL.has(message.study.status) && !open) {
          finished = true;
          abort.abort();
        }
      });
    }

    void (async () => {
      while (!abort.signal.aborted) {
        try {
          await connectOnce();
        } catch (err) {
          if (abort.signal.aborted) break;
          const status = (err as { status?: number }).status;
          if (status === 401 || status === 403 || status === 404) {
            setState('unavailable');
            return;
          }
        }
        if (abort.signal.aborted) break;
        // The stream ended (hub restart, session expiry, network): wait, then reconnect.
        setState('reconnecting');
        const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
        failures += 1;
        await new Promise((r) => window.setTimeout(r, wait));
      }
      if (finished) setState('finished');
    })();
    return () => abort.abort();
  }, [studyId, enabled, token, queryClient, signOut]);

  return { state, lastMessageAt };
}
