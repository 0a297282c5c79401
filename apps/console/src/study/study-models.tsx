import type { RoundView, StudyView } from '@tessera/protocol';
import { useApi, useCanAdminister } from '../auth/session-context.js';
import { formatTime, shortHash } from '../lib/format.js';
import { modelVersions } from '../lib/round-metrics.js';
import { CopyButton, DownloadButton } from '../ui/actions.js';
import { EmptyState } from '../ui/feedback.js';

/** The final model's files (administrators download them) and every model version the study published. */
export function StudyModels({ study, rounds }: { study: StudyView; rounds: RoundView[] }) {
  const api = useApi();
  const canAdminister = useCanAdminister();
  const versions = modelVersions(rounds);
  return (
    <>
      {study.status === 'completed' && study.currentModelHash ? (
        <div className="final-model">
          <p>
            Final model{' '}
            <span className="mono" title={study.currentModelHash}>
              {shortHash(study.currentModelHash, 24)}
            </span>{' '}
            <CopyButton text={study.currentModelHash} label="Copy hash" className="button button-small button-ghost" />
          </p>
          {canAdminister ? (
            <div className="row">
              <DownloadButton fetchFile={() => api.modelFile(study.id, 'model.json')}>
                model.json (TensorFlow.js)
              </DownloadButton>
              <DownloadButton fetchFile={() => api.modelFile(study.id, 'weights.bin')}>weights.bin</DownloadButton>
              <DownloadButton fetchFile={() => api.modelFile(study.id, 'model.onnx')}>model.onnx (ONNX)</DownloadButton>
            </div>
          ) : (
            <p className="hint">
              Model files are downloaded by administrators (the download is recorded in the audit trail).
            </p>
          )}
        </div>
      ) : (
        <p className="hint">The final model can be downloaded once the study has completed.</p>
      )}
      {versions.length === 0 ? (
        <EmptyState title="No model yet">The initial model is published when the first round opens.</EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Produced by</th>
                <th scope="col">SHA-256</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={`${v.version}-${v.hash}`}>
                  <th scope="row">{v.version === 0 ? 'initial' : `v${v.version}`}</th>
                  <td>{v.round === null ? `seed ${study.plan.training.initSeed}` : `round ${v.round}`}</td>
                  <td className="mono small" title={v.hash}>
                    {shortHash(v.hash, 24)}
                    {v.hash === study.currentModelHash ? ' (current)' : ''}
                  </td>
                  <td className="nowrap">{formatTime(v.at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
