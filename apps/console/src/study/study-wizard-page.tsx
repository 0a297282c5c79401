import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import type { SiloView, StudyPlan } from '@tessera/protocol';
import { useApi } from '../auth/session-context.js';
import { defaultDraft, planToDraft, type PlanDraft } from '../lib/plan-draft.js';
import { ErrorMessage, Loading, Notice } from '../ui/feedback.js';
import { usePageTitle } from '../ui/page-title.js';
import { DraftStatus, useDraftAutosave } from './study-drafts.js';
import { deleteDraft, getDraft } from './study-pages-api.js';
import { StudyWizard } from './study-wizard.js';

/**
 * The wizard with its draft kept on the hub: opened from `?draft=<id>` it resumes that draft (form and step);
 * otherwise it starts from `fresh` and creates a draft at the first edit, putting its id in the address so a reload,
 * Back then Forward, or a new sign-in after the session expired comes back to it. Once the plan is sent the draft is
 * deleted.
 */
function DraftedWizard({
  fresh,
  studyId,
  silos,
  submitLabel,
  onSubmit,
}: {
  fresh: () => PlanDraft;
  studyId?: string;
  silos: SiloView[];
  submitLabel: string;
  onSubmit: (plan: StudyPlan) => Promise<void>;
}) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [params, setParams] = useSearchParams();
  // The draft this visit opened with; the id the address gets later (after the first save) changes nothing here.
  const [opened] = useState(() => params.get('draft'));
  const resumed = useQuery({
    queryKey: ['study-draft', opened],
    queryFn: () => getDraft(api, opened!),
    enabled: opened !== null,
    staleTime: Infinity,
    gcTime: 0,
  });
  // Made once per visit: a new study's random split salt stays the same while the page re-renders.
  const [blank] = useState(fresh);
  const autosave = useDraftAutosave(api, {
    draftId: opened,
    studyId,
    onCreated: (id) => {
      setParams({ draft: id }, { replace: true });
      void queryClient.invalidateQueries({ queryKey: ['study-drafts'] });
    },
  });
  if (opened !== null && resumed.isPending) return <Loading label="Loading the draft…" />;
  if (opened !== null && resumed.isError) {
    return <ErrorMessage error={resumed.error} title="The draft could not be loaded" />;
  }
  const initial = resumed.data;
  async function send(plan: StudyPlan) {
    await onSubmit(plan);
    const id = autosave.draftId();
    if (id) {
      await deleteDraft(api, id).catch(() => undefined); // a leftover draft is listed and can be deleted by hand
      void queryClient.invalidateQueries({ queryKey: ['study-drafts'] });
    }
  }
  return (
    <>
      <DraftStatus state={autosave.state} />
      <StudyWizard
        initialDraft={initial ? (initial.form as unknown as PlanDraft) : blank}
        initialStep={initial?.step ?? 0}
        silos={silos}
        submitLabel={submitLabel}
        onSubmit={send}
        onDraftChange={autosave.schedule}
      />
    </>
  );
}

export function NewStudyPage() {
  usePageTitle('New study');
  const api = useApi();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const silos = useQuery({ queryKey: ['silos'], queryFn: () => api.silos() });
  async function create(plan: StudyPlan) {
    const study = await api.createStudy(plan);
    queryClient.setQueryData(['study', study.id], study);
    void queryClient.invalidateQueries({ queryKey: ['studies'] });
    void navigate(`/studies/${study.id}`);
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
        <DraftedWizard
          fresh={() => defaultDraft()}
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
    void navigate(`/studies/${id}`);
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
      ) : study.data.archivedAt ? (
        <Notice tone="warning">This study is archived: read-only.</Notice>
      ) : !['draft', 'awaiting_approvals'].includes(study.data.status) ? (
        <Notice tone="warning">A {study.data.status} study&apos;s plan can no longer change.</Notice>
      ) : (
        <>
          <Notice tone="warning">
            Saving makes version {study.data.planVersion + 1} with a new hash: every silo must approve it again.
          </Notice>
          <DraftedWizard
            fresh={() => planToDraft(study.data.plan)}
            studyId={id}
            silos={silos.data}
            submitLabel={`Save plan version ${study.data.planVersion + 1}`}
            onSubmit={save}
          />
        </>
      )}
    </section>
  );
}
