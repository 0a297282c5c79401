import { useId, useState } from 'react';
import type { EnrollmentIssuedView } from '@tessera/protocol';
import { AGENT_IMAGE, dockerComposeFile, dockerRunCommand, shellQuote } from '../lib/agent-install.js';
import { formatRelative, formatTime } from '../lib/format.js';
import { unreachableAddresses } from '../lib/bundle-safety.js';
import { ConfirmDialog, CopyButton } from '../ui/actions.js';

/**
 * The one-time enrollment bundle, right after it was issued: the hub keeps only its hash, so this is the only time
 * anyone sees it. With the exact lines the silo's IT team runs.
 */
export function EnrollmentBundlePanel({ issued, onDone }: { issued: EnrollmentIssuedView; onDone: () => void }) {
  const [hostDataDir, setHostDataDir] = useState('/srv/tessera/data');
  const [dataFile, setDataFile] = useState('records.csv');
  const id = useId();
  const options = { bundleText: issued.bundleText, hostDataDir, dataFile: dataFile.trim() || 'records.csv' };
  const run = dockerRunCommand(options);
  const compose = dockerComposeFile(options);
  const cli = `tessera-agent enroll --bundle ${shellQuote(issued.bundleText)}`;
  const unreachable = unreachableAddresses(issued.bundle);
  const [confirming, setConfirming] = useState(false);
  return (
    <section className="card bundle" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Enrollment bundle for {issued.silo.name}</h2>
      <div className="notice notice-warning" role="note">
        <strong>Shown once.</strong> The hub keeps only a hash of this token. Hand it to the silo&apos;s IT team over a
        channel you trust; it works once and expires {formatRelative(issued.bundle.expiresAt)} (
        {formatTime(issued.bundle.expiresAt)}).
      </div>
      {unreachable.length > 0 ? (
        <div className="notice notice-danger" role="alert">
          <strong>An agent on another machine cannot use this bundle.</strong> It sends the agent to{' '}
          {unreachable.map((u, i) => (
            <span key={u.listener}>
              {i > 0 ? ' and ' : ''}
              <span className="mono">{u.url}</span> ({u.listener === 'enrollment' ? 'enrollment' : 'silo'} listener)
            </span>
          ))}
          , a loopback address: on the silo&apos;s host that is the silo&apos;s own machine, not the hub. Set{' '}
          <span className="mono">TESSERA_PUBLIC_ENROLL_URL</span> and{' '}
          <span className="mono">TESSERA_PUBLIC_SILO_URL</span> to addresses the silos can reach, restart the hub and
          issue a new bundle. Use this one only for an agent on the hub&apos;s own machine.
        </div>
      ) : null}
      <div className="field">
        <label htmlFor={`${id}-bundle`}>Enrollment bundle</label>
        <textarea
          id={`${id}-bundle`}
          className="mono bundle-text"
          readOnly
          rows={4}
          value={issued.bundleText}
          onFocus={(e) => e.currentTarget.select()}
          aria-describedby={`${id}-bundle-hint`}
        />
        <p id={`${id}-bundle-hint`} className="hint">
          Pins the hub&apos;s CA (SHA-256 {issued.bundle.caFingerprintSha256.slice(0, 16)}…) and enrolls at{' '}
          <span className="mono">{issued.bundle.enrollUrl}</span>.
        </p>
        <div className="row">
          <CopyButton text={issued.bundleText} label="Copy bundle" className="button button-primary" />
        </div>
      </div>

      <h3>Run the agent</h3>
      <p>
        The agent runs next to the data as the container <span className="mono">{AGENT_IMAGE}</span>. It only makes
        outbound connections to the hub: publish no port. The data folder is mounted read-only; the agent&apos;s key,
        certificate and privacy ledger live in its own volume.
      </p>
      <div className="grid-2">
        <div className="field">
          <label htmlFor={`${id}-dir`}>Data folder on the silo&apos;s host</label>
          <input id={`${id}-dir`} value={hostDataDir} onChange={(e) => setHostDataDir(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-file`}>Data file in that folder</label>
          <input id={`${id}-file`} value={dataFile} onChange={(e) => setDataFile(e.target.value)} />
        </div>
      </div>
      <div className="snippet">
        <div className="snippet-head">
          <h4 id={`${id}-run`}>docker run</h4>
          <CopyButton text={run} label="Copy command" />
        </div>
        <pre className="code" aria-labelledby={`${id}-run`} tabIndex={0}>
          {run}
        </pre>
      </div>
      <div className="snippet">
        <div className="snippet-head">
          <h4 id={`${id}-compose`}>docker compose (compose.yaml)</h4>
          <CopyButton text={compose} label="Copy file" />
        </div>
        <pre className="code" aria-labelledby={`${id}-compose`} tabIndex={0}>
          {compose}
        </pre>
      </div>
      <details className="snippet">
        <summary>Without Docker (the agent CLI)</summary>
        <pre className="code" tabIndex={0}>
          {cli}
        </pre>
      </details>
      <div className="row row-end">
        <button type="button" className="button button-secondary" onClick={() => setConfirming(true)}>
          I have handed it over
        </button>
      </div>
      <ConfirmDialog
        open={confirming}
        title="Close the only copy of this bundle?"
        confirmLabel="Close the bundle"
        onConfirm={() => {
          setConfirming(false);
          onDone();
        }}
        onCancel={() => setConfirming(false)}
      >
        <p>
          The hub keeps only a hash of the token: once this panel closes, nobody can show the bundle again. Close it
          only after the silo&apos;s IT team has it (or you have stored it somewhere safe). Otherwise, issue a new
          bundle for {issued.silo.name}.
        </p>
      </ConfirmDialog>
    </section>
  );
}
