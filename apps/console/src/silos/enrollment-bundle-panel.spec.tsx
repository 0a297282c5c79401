import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import type { EnrollmentIssuedView, SiloView } from '@tessera/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AGENT_IMAGE } from '../lib/agent-install.js';
import { isLoopbackHost, unreachableAddresses } from '../lib/bundle-safety.js';
import { EnrollmentBundlePanel } from './enrollment-bundle-panel.js';

afterEach(cleanup);

function issuedAt(enrollUrl: string, hubSiloUrl: string): EnrollmentIssuedView {
  const bundle = {
    format: 'tessera.enrollment-bundle/1' as const,
    siloId: '00000000-0000-4000-8000-000000000001',
    siloName: 'Cleveland',
    enrollUrl,
    hubSiloUrl,
    token: 'T'.repeat(43),
    caFingerprintSha256: 'ab'.repeat(32),
    expiresAt: new Date(Date.now() + 24 * 3600_000).toISOString(),
  };
  return {
    silo: { id: bundle.siloId, name: 'Cleveland' } as SiloView,
    bundle,
    bundleText: btoa(JSON.stringify(bundle)),
  };
}

describe('the enrollment bundle panel', () => {
  it('warns when the bundle sends the agent to a loopback address, naming the URLs and the settings to fix', () => {
    render(
      <EnrollmentBundlePanel
        issued={issuedAt('https://127.0.0.1:8444', 'https://hub.example.org:8443')}
        onDone={() => undefined}
      />,
    );
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('cannot use this bundle');
    expect(alert.textContent).toContain('https://127.0.0.1:8444 (enrollment listener)');
    expect(alert.textContent).not.toContain('hub.example.org');
    expect(alert.textContent).toContain('TESSERA_PUBLIC_ENROLL_URL');
  });

  it('shows no warning for a bundle with reachable addresses, and names the deployed image', () => {
    render(
      <EnrollmentBundlePanel
        issued={issuedAt('https://hub.example.org:8444', 'https://10.0.4.2:8443')}
        onDone={() => undefined}
      />,
    );
    expect(screen.queryByRole('alert')).toBeNull();
    expect(screen.getAllByText(AGENT_IMAGE, { exact: false }).length).toBeGreaterThan(0);
  });

  it('asks before discarding the only copy: Cancel keeps the bundle, confirming closes it', () => {
    const onDone = vi.fn();
    render(
      <EnrollmentBundlePanel
        issued={issuedAt('https://hub.example.org:8444', 'https://hub.example.org:8443')}
        onDone={onDone}
      />,
    );
    fireEvent.click(screen.getByRole('button', { name: 'I have handed it over' }));
    expect(onDone).not.toHaveBeenCalled();
    const dialog = screen.getByRole('dialog', { name: 'Close the only copy of this bundle?' });
    expect(dialog.textContent).toContain('nobody can show the bundle again');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
    expect(onDone).not.toHaveBeenCalled();
    expect(screen.getByLabelText('Enrollment bundle')).toBeTruthy();

    fireEvent.click(screen.getByRole('button', { name: 'I have handed it over' }));
    fireEvent.click(
      within(screen.getByRole('dialog', { name: 'Close the only copy of this bundle?' })).getByRole('button', {
        name: 'Close the bundle',
      }),
    );
    expect(onDone).toHaveBeenCalledTimes(1);
  });
});

describe('loopback detection', () => {
  it('recognises loopback and unspecified hosts, and nothing else', () => {
    for (const h of ['localhost', 'hub.localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::', '0.0.0.0', '::ffff:7f00:1'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of [
      'hub.example.org',
      '10.0.0.1',
      '192.168.1.5',
      '128.0.0.1',
      '[2001:db8::1]',
      'localhost.example.org',
    ])
      expect(isLoopbackHost(h), h).toBe(false);
  });

  it('checks both listeners of a bundle and ignores a URL it cannot parse', () => {
    expect(unreachableAddresses({ enrollUrl: 'https://[::1]:8444', hubSiloUrl: 'https://localhost:8443' })).toEqual([
      { listener: 'enrollment', url: 'https://[::1]:8444', host: '[::1]' },
      { listener: 'silo', url: 'https://localhost:8443', host: 'localhost' },
    ]);
    expect(unreachableAddresses({ enrollUrl: 'not a url', hubSiloUrl: 'https://hub.example.org:8443' })).toEqual([]);
  });
});
