import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import type { StudyPlan } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { defaultDraft, planToDraft } from '../lib/plan-draft.js';
import { ErrorMessage, Loading, Notice } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { StudyWizard } from './study-wizard.js';

export function NewStudyPage() {
  usePageTitle('New study');
  const api = useApi();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos() });
  // Made once per visit: its random split salt stays the same while the page re-renders.
  const [initialDraft] = useState(defaultDraft);
  async function create(plan: StudyPlan) {
    const study = await api.createStudy(plan);
    queryClient.setQueryData(['study', study.id], study);
    void queryClient.invalidateQueries({ queryKey: ['studies'] });
    navigate(`/studies/${study.id}`);
  }
  return (
    <section className="page" aria-labelledby="new-study-title">
      <p className="crumbs">
        <Link to="/studies">← Studies</Link>
      </p>
      <h1 id="new-study-title">New study</h1>
      <p className="lead">
        The plan is what every invited silo approves, byte for byte. It starts from the Fed-Heart-Disease schema; change
        what your study needs.
      </p>
      {silos.isPending ? (
        <Loading label="Loading silos…" />
      ) : silos.isError ? (
        <ErrorMessage error={silos.error} title="The silos could not be loaded" />
      ) : (
        <StudyWizard
          initialDraft={initialDraft}
          silos={silos.data}
          submitLabel="Create the draft study"
          onSubmit={create}
        />
      )}
    </section>
  );
}

export function EditPlanPage() {
  const { id = '' } = useParams();
  const api = useApi();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const study = useQuery({ queryKey: ['study', id], queryFn: () => api.study(id) });
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos() });
  usePageTitle(study.data ? `New plan version · ${study.data.name}` : 'New plan version');
  async function save(plan: StudyPlan) {
    const updated = await api.updatePlan(id, plan);
    queryClient.setQueryData(['study', id], updated);
    void queryClient.invalidateQueries({ queryKey: ['studies'] });
    navigate(`/studies/${id}`);
  }
  return (
    <section className="page" aria-labelledby="edit-plan-title">
      <p className="crumbs">
        <Link to={`/studies/${id}`}>← {study.data?.name ?? 'Study'}</Link>
      </p>
      <h1 id="edit-plan-title">New plan version</h1>
      {study.isPending || silos.isPending ? (
        <Loading />
      ) : study.isError ? (
        <ErrorMessage error={study.error} title="The study could not be loaded" />
      ) : silos.isError ? (
        <ErrorMessage error={silos.error} title="The silos could not be loaded" />
      ) : !['draft', 'awaiting_approvals'].includes(study.data.status) ? (
        <Notice tone="warning">A {study.data.status} study&apos;s plan can no longer change.</Notice>
      ) : (
        <>
          <Notice tone="warning">
            Saving makes version {study.data.planVersion + 1} with a new hash: every silo must approve it again.
          </Notice>
          <StudyWizard
            initialDraft={planToDraft(study.data.plan)}
            silos={silos.data}
            submitLabel={`Save plan version ${study.data.planVersion + 1}`}
            onSubmit={save}
          />
        </>
      )}
    </section>
  );
}
