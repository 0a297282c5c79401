import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import type { ApiClient } from '../api/api-client.js';
import { useApi } from '../auth/session-context.js';
import { formatTime } from '../lib/format.js';
import type { PlanDraft } from '../lib/plan-draft.js';
import { ErrorMessage } from '../ui/feedback.js';
import { createDraft, deleteDraft, listDrafts, saveDraft, type DraftContent } from './study-pages-api.js';

/** Quiet time after the last keystroke before the draft is saved on the hub. */
export const DRAFT_SAVE_DELAY_MS = 800;

export type DraftSaveState =
  { status: 'idle' } | { status: 'saving' } | { status: 'saved'; at: string } | { status: 'error'; error: unknown };

/**
 * Saves the wizard's form on the hub as it is edited: the first change creates the draft (`onCreated` gets its id,
 * to put it in the address so a reload resumes it), later ones update it, one save at a time, the last edit winning.
 * Leaving the page (Back, a link) saves what is pending at once. A failed save keeps its content for the next one.
 */
export function useDraftAutosave(
  api: ApiClient,
  options: { draftId: string | null; studyId?: string; onCreated: (id: string) => void },
) {
  const idRef = useRef(options.draftId);
  const pending = useRef<DraftContent | null>(null);
  const timer = useRef<number | undefined>(undefined);
  const chain = useRef<Promise<void>>(Promise.resolve());
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const [state, setState] = useState<DraftSaveState>({ status: 'idle' });

  const flush = useCallback(() => {
    window.clearTimeout(timer.current);
    const content = pending.current;
    if (!content) return;
    pending.current = null;
    setState({ status: 'saving' });
    chain.current = chain.current.then(async () => {
      try {
        const { studyId, onCreated } = optionsRef.current;
        const id = idRef.current;
        const saved = id
          ? await saveDraft(api, id, content)
          : await createDraft(api, { ...content, ...(studyId ? { studyId } : {}) });
        if (!id) {
          idRef.current = saved.id;
          onCreated(saved.id);
        }
        setState({ status: 'saved', at: saved.updatedAt });
      } catch (error) {
        pending.current ??= content;
        setState({ status: 'error', error });
      }
    });
  }, [api]);

  const schedule = useCallback(
    (form: PlanDraft, step: number) => {
      pending.current = { form: form as unknown as Record<string, unknown>, step };
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(flush, DRAFT_SAVE_DELAY_MS);
    },
    [flush],
  );

  useEffect(() => flush, [flush]);

  /** The draft's id once it exists (to delete it when its plan became a study). */
  const draftId = () => idRef.current;
  return { schedule, state, draftId, flush };
}

/** "Draft saved on the hub at …", or why it was not. */
export function DraftStatus({ state }: { state: DraftSaveState }) {
  return (
    <p className="muted small draft-status" role="status" aria-live="polite">
      {state.status === 'saving'
        ? 'Saving the draft on the hub…'
        : state.status === 'saved'
          ? `Draft saved on the hub ${formatTime(state.at)}`
          : state.status === 'idle'
            ? 'The draft is saved on the hub as you edit it.'
            : null}
      {state.status === 'error' ? <ErrorMessage error={state.error} title="The draft could not be saved" /> : null}
    </p>
  );
}

/** The administrator's drafts on the hub, newest first: resume or delete each. */
export function StudyDrafts() {
  const api = useApi();
  const queryClient = useQueryClient();
  const drafts = useQuery({ queryKey: ['study-drafts'], queryFn: () => listDrafts(api) });
  const remove = useMutation({
    mutationFn: (id: string) => deleteDraft(api, id),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['study-drafts'] }),
  });
  if (drafts.isPending || (drafts.isSuccess && drafts.data.length === 0)) return null;
  if (drafts.isError) return <ErrorMessage error={drafts.error} title="The drafts could not be loaded" />;
  return (
    <section className="card" aria-labelledby="drafts-title">
      <h2 id="drafts-title">Unfinished plans</h2>
      {remove.isError ? <ErrorMessage error={remove.error} title="The draft could not be deleted" /> : null}
      <ul className="draft-list">
        {drafts.data.map((d) => (
          <li key={d.id} data-draft={d.id}>
            <Link to={d.studyId ? `/studies/${d.studyId}/edit?draft=${d.id}` : `/studies/new?draft=${d.id}`}>
              {d.title}
            </Link>{' '}
            <span className="muted small">
              {d.studyId ? 'new plan version · ' : ''}saved {formatTime(d.updatedAt)}
            </span>{' '}
            <button
              type="button"
              className="button button-small button-ghost"
              disabled={remove.isPending}
              onClick={() => remove.mutate(d.id)}
              aria-label={`Delete the draft ${d.title}`}
            >
              Delete
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
