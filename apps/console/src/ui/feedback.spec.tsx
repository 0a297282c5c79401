import { cleanup, render, screen } from '@testing-library/react';
import { HubErrorCode } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, apiErrorOf } from '../api/api-error.js';
import { ConsoleErrorCode, guidanceFor } from '../api/error-guidance.js';
import { ErrorMessage } from './feedback.js';

afterEach(cleanup);

/** A failed answer of the hub, as fetch hands it to the console. */
function hubAnswer(status: number, code: string, message: string, details?: unknown): Response {
  const body = JSON.stringify({ error: code, message, correlationId: 'req-42', details });
  return new Response(body, { status, headers: { 'content-type': 'application/json' } });
}

describe('error messages by code', () => {
  it('has words for every code of the contract and for the console’s own', () => {
    for (const code of [...Object.values(HubErrorCode), ...Object.values(ConsoleErrorCode)]) {
      expect(guidanceFor(code), code).toMatch(/\w{3,}/);
    }
    expect(guidanceFor('HTTP_502')).toBeNull();
  });

  it('tells two answers of the same status apart by their code', async () => {
    render(<ErrorMessage error={await apiErrorOf(hubAnswer(409, 'STALE_PLAN', 'Plan hash 1a2b… is not current.'))} />);
    expect(screen.getByText('Plan hash 1a2b… is not current.')).toBeTruthy();
    expect(screen.getByText(guidanceFor(HubErrorCode.STALE_PLAN)!)).toBeTruthy();
    cleanup();
    render(<ErrorMessage error={await apiErrorOf(hubAnswer(409, 'STUDY_STATE', 'Study "X" is completed.'))} />);
    expect(screen.getByText(guidanceFor(HubErrorCode.STUDY_STATE)!)).toBeTruthy();
    expect(screen.queryByText(guidanceFor(HubErrorCode.STALE_PLAN)!)).toBeNull();
  });

  it('keeps the problems and the correlation id beside the words', async () => {
    const error = await apiErrorOf(
      hubAnswer(400, 'PLAN_INVALID', 'The plan has 1 problem(s).', ['training.rounds: must be at least 1']),
    );
    render(<ErrorMessage error={error} title="The plan was not saved" />);
    expect(screen.getByText('The plan was not saved')).toBeTruthy();
    expect(screen.getByText(guidanceFor(HubErrorCode.PLAN_INVALID)!)).toBeTruthy();
    expect(screen.getByText('training.rounds: must be at least 1')).toBeTruthy();
    expect(screen.getByText('Correlation id: req-42')).toBeTruthy();
  });

  it('shows the message alone when the answer was not the hub’s', async () => {
    const proxy = new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' });
    const error = await apiErrorOf(proxy);
    expect(error.code).toBe('HTTP_502');
    render(<ErrorMessage error={error} />);
    const alert = screen.getByRole('alert');
    expect(alert.querySelector('.notice-guidance')).toBeNull();
    expect(alert.textContent).toContain('The hub answered 502 Bad Gateway');
  });

  it('says what to do when the hub cannot be reached', () => {
    render(<ErrorMessage error={new ApiError(0, ConsoleErrorCode.NETWORK_ERROR, 'The hub could not be reached.')} />);
    expect(screen.getByText(guidanceFor(ConsoleErrorCode.NETWORK_ERROR)!)).toBeTruthy();
  });
});
