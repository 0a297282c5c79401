import { describe, expect, it } from 'vitest';
import { auditableUrl, webhookUrlProblem } from './webhook-url.util';

describe('webhook endpoint URLs', () => {
  it('accepts https', () => {
    expect(webhookUrlProblem('https://alerts.example.org/tessera?x=1', false)).toBeNull();
  });

  it('accepts plain http to 127.0.0.1 only when allowed', () => {
    expect(webhookUrlProblem('http://127.0.0.1:8080/hook', true)).toBeNull();
    expect(webhookUrlProblem('http://127.0.0.1:8080/hook', false)).toMatch(/TESSERA_WEBHOOK_ALLOW_LOOPBACK_HTTP/);
    expect(webhookUrlProblem('http://localhost:8080/hook', true)).toMatch(/must use https/);
    expect(webhookUrlProblem('http://alerts.example.org/hook', true)).toMatch(/must use https/);
  });

  it('refuses other schemes, credentials, fragments, relative and long URLs', () => {
    expect(webhookUrlProblem('ftp://example.org/x', true)).toMatch(/not ftp/);
    expect(webhookUrlProblem('https://user:pw@example.org/x', false)).toMatch(/user name or password/);
    expect(webhookUrlProblem('https://example.org/x#y', false)).toMatch(/fragment/);
    expect(webhookUrlProblem('/hook', false)).toMatch(/not an absolute URL/);
    expect(webhookUrlProblem(`https://example.org/${'a'.repeat(2048)}`, false)).toMatch(/at most 2048/);
  });

  it('leaves the query string out of the audit log', () => {
    expect(auditableUrl('https://hooks.example.org/t/abc?token=s3cr3t')).toBe('https://hooks.example.org/t/abc?…');
    expect(auditableUrl('https://hooks.example.org/t')).toBe('https://hooks.example.org/t');
  });
});
