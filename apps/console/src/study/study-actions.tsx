import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import type { StudyView } from '@tessera/protocol';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { ConfirmDialog } from '../ui/actions.js';

// The study's commands on its page: a new plan version, submit for approval, start, stop (each confirmed).

type StudyCommand = 'submit' | 'start' | 'stop';

export function StudyActions({ study }: { study: StudyView }) {
  const api = useApi();
  const canAdminister = useCanAdminister();
  const queryClient = useQueryClient();
  const [confirm, setConfirm] = useState<StudyCommand | null>(null);
  const command = useMutation({
    mutationFn: ({ c, reason }: { c: StudyCommand; reason: string }) =>
      c === 'submit'
        ? api.submitStudy(study.id)
        : c === 'start'
          ? api.startStudy(study.id)
          : api.stopStudy(study.id, reason),
    onSuccess: (updated) => {
      setConfirm(null);
      queryClient.setQueryData(['study', study.id], updated);
      void queryClient.invalidateQueries({ queryKey: ['rounds', study.id] });
      void queryClient.invalidateQueries({ queryKey: ['studies'] });
    },
  });
  // An archived study is read-only: only its lifecycle actions (unarchive, clone) remain.
  if (!canAdminister || study.archivedAt) return null;
  const editable = study.status === 'draft' || study.status === 'awaiting_approvals';
  const stoppable = editable || study.status === 'running';
  const open = (c: StudyCommand) => {
    command.reset();
    setConfirm(c);
  };
  return (
    <div className="row actions">
      {editable ? (
        <Link to={`/studies/${study.id}/edit`} className="button button-secondary">
          New plan version
        </Link>
      ) : null}
      {study.status === 'draft' ? (
        <button type="button" className="button button-primary" onClick={() => open('submit')}>
          Submit for approval
        </button>
      ) : null}
      {study.status === 'awaiting_approvals' ? (
        <button type="button" className="button button-primary" onClick={() => open('start')}>
          Start the study
        </button>
      ) : null}
      {stoppable ? (
        <button type="button" className="button button-danger-outline" onClick={() => open('stop')}>
          Stop
        </button>
      ) : null}
      <ConfirmDialog
        open={confirm === 'submit'}
        title="Submit the plan to the invited silos?"
        confirmLabel="Submit"
        tone="primary"
        busy={command.isPending}
        error={command.error}
        onCancel={() => setConfirm(null)}
        onConfirm={(reason) => command.mutate({ c: 'submit', reason })}
      >
        <p>
          Each invited silo&apos;s agent then shows plan version {study.planVersion} to its data steward, who approves
          or rejects its exact hash.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={confirm === 'start'}
        title="Start the study?"
        confirmLabel="Start"
        tone="primary"
        busy={command.isPending}
        error={command.error}
        onCancel={() => setConfirm(null)}
        onConfirm={(reason) => command.mutate({ c: 'start', reason })}
      >
        <p>
          It starts with the silos that approved plan version {study.planVersion} (
          {study.decisions.filter((d) => d.decision === 'approve').length} of {study.plan.silos.length}); at least{' '}
          {study.plan.participation.minSilosPerRound} are needed.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={confirm === 'stop'}
        title="Stop the study?"
        confirmLabel="Stop the study"
        reasonLabel="Reason"
        busy={command.isPending}
        error={command.error}
        onCancel={() => setConfirm(null)}
        onConfirm={(reason) => command.mutate({ c: 'stop', reason })}
      >
        <p>Open rounds are abandoned and no silo trains for it again. This cannot be undone.</p>
      </ConfirmDialog>
    </div>
  );
}
