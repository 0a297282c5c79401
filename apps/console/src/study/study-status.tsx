import type { ParticipantStatus, StudyStatus } from '@tessera/protocol';
import { STUDY_STATUS_LABEL } from '../lib/format.js';
import { Badge, type Tone } from '../ui/feedback.js';

const STUDY_TONE: Record<StudyStatus, Tone> = {
  draft: 'neutral',
  awaiting_approvals: 'info',
  running: 'info',
  completed: 'success',
  stopped: 'warning',
  failed: 'danger',
};

export function StudyStatusBadge({ status }: { status: StudyStatus }) {
  return <Badge tone={STUDY_TONE[status]}>{STUDY_STATUS_LABEL[status] ?? status}</Badge>;
}

const PARTICIPANT_TONE: Record<ParticipantStatus, Tone> = {
  waiting: 'neutral',
  uploaded: 'info',
  evaluated: 'success',
  late: 'warning',
  failed: 'danger',
};

export function ParticipantStatusBadge({ status }: { status: ParticipantStatus }) {
  return <Badge tone={PARTICIPANT_TONE[status] ?? 'neutral'}>{status}</Badge>;
}
