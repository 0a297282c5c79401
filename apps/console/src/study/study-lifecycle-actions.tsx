import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { StudyView } from '@tessera/protocol';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { ConfirmDialog } from '../ui/actions.js';
import { lifecycle, type LifecycleCommand } from './study-pages-api.js';

const ENDED = ['completed', 'stopped', 'failed'];

/** Pause or resume a running study, archive or unarchive a draft or an ended one, clone any as a new draft. */
export function StudyLifecycleActions({ study }: { study: StudyView }) {
  const api = useApi();
  const canAdminister = useCanAdminister();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [confirm, setConfirm] = useState<LifecycleCommand | null>(null);
  const command = useMutation({
    mutationFn: ({ c, reason }: { c: LifecycleCommand; reason: string }) => lifecycle(api, study.id, c, reason),
    onSuccess: (result, { c }) => {
      setConfirm(null);
      void queryClient.invalidateQueries({ queryKey: ['studies'] });
      if (c === 'clone') {
        void navigate(`/studies/${result.id}`);
        return;
      }
      queryClient.setQueryData(['study', study.id], result);
      void queryClient.invalidateQueries({ queryKey: ['rounds', study.id] });
      void queryClient.invalidateQueries({ queryKey: ['round-history', study.id] });
    },
  });
  if (!canAdminister) return null;
  const archived = !!study.archivedAt;
  const paused = !!study.paused;
  const open = (c: LifecycleCommand) => {
    command.reset();
    setConfirm(c);
  };
  const dialog = (c: LifecycleCommand) => ({
    open: confirm === c,
    busy: command.isPending,
    error: command.error,
    onCancel: () => setConfirm(null),
    onConfirm: (reason: string) => command.mutate({ c, reason }),
  });
  return (
    <div className="row actions">
      {study.status === 'running' && !paused ? (
        <button type="button" className="button button-secondary" onClick={() => open('pause')}>
          Pause
        </button>
      ) : null}
      {study.status === 'running' && paused ? (
        <button type="button" className="button button-primary" onClick={() => open('resume')}>
          Resume
        </button>
      ) : null}
      {!archived && (study.status === 'draft' || ENDED.includes(study.status)) ? (
        <button type="button" className="button button-secondary" onClick={() => open('archive')}>
          Archive
        </button>
      ) : null}
      {archived ? (
        <button type="button" className="button button-secondary" onClick={() => open('unarchive')}>
          Unarchive
        </button>
      ) : null}
      {study.legacyPlan ? null : (
        <button type="button" className="button button-secondary" onClick={() => open('clone')}>
          Clone as draft
        </button>
      )}
      <ConfirmDialog
        {...dialog('pause')}
        title="Pause the study?"
        confirmLabel="Pause the study"
        tone="primary"
        reasonLabel="Reason"
      >
        <p>
          The round under way finishes; no new round opens until you resume. The silos&apos; agents are told and wait.
        </p>
      </ConfirmDialog>
      <ConfirmDialog {...dialog('resume')} title="Resume the study?" confirmLabel="Resume" tone="primary">
        <p>The round held back while paused opens now, and the agents carry on.</p>
      </ConfirmDialog>
      <ConfirmDialog {...dialog('archive')} title="Archive the study?" confirmLabel="Archive" tone="primary">
        <p>
          It becomes read-only and leaves the default studies list (the list&apos;s &ldquo;Archived&rdquo; filter shows
          it). Its rounds, decisions, ledger and audit records stay.
        </p>
      </ConfirmDialog>
      <ConfirmDialog {...dialog('unarchive')} title="Unarchive the study?" confirmLabel="Unarchive" tone="primary">
        <p>It returns to the default studies list.</p>
      </ConfirmDialog>
      <ConfirmDialog {...dialog('clone')} title="Clone as a new draft?" confirmLabel="Clone" tone="primary">
        <p>
          A new draft study with this plan (version {study.planVersion}) and a new id, hence a new plan hash that every
          steward approves anew. Nothing else is copied: no decision, round, model or privacy spend.
        </p>
      </ConfirmDialog>
    </div>
  );
}
