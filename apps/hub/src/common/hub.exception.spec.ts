import { BadRequestException, HttpException, NotFoundException } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { errorBodyFor } from './global-exception.filter';
import { HubErrorCode, HubException, httpStatusOf } from './hub.exception';

describe('error mapping', () => {
  it('maps every code to a 4xx or 5xx status', () => {
    for (const code of Object.values(HubErrorCode)) {
      const status = httpStatusOf(code);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it('answers domain errors with their code, message and details', () => {
    const { status, body } = errorBodyFor(new HubException(HubErrorCode.CONFLICT, 'taken', ['a']), 'cid');
    expect(status).toBe(409);
    expect(body).toEqual({ error: 'CONFLICT', message: 'taken', correlationId: 'cid', details: ['a'] });
  });

  it('hides the SQL and stack of an unexpected database error', () => {
    const err = new QueryFailedError('SELECT secret FROM users', [], new Error('relation "users" does not exist'));
    const { status, body } = errorBodyFor(err, 'cid');
    expect(status).toBe(500);
    const text = JSON.stringify(body);
    expect(text).not.toMatch(/SELECT|does not exist|\.js:\d+/);
    expect(body.correlationId).toBe('cid');
  });

  it('keeps Nest HTTP exceptions and their message', () => {
    const { status, body } = errorBodyFor(new BadRequestException('Validation failed (uuid is expected)'), 'c');
    expect(status).toBe(400);
    expect(body.message).toBe('Validation failed (uuid is expected)');
  });

  it("names the framework's refusals by the contract's code for their status", () => {
    expect(errorBodyFor(new NotFoundException('Cannot GET /x'), 'c')).toMatchObject({
      status: 404,
      body: { error: 'NOT_FOUND', message: 'Cannot GET /x' },
    });
    expect(errorBodyFor(new HttpException('Too Many Requests', 429), 'c')).toMatchObject({
      status: 429,
      body: { error: 'TOO_MANY_REQUESTS' },
    });
    // A status the contract has no code for (none of the hub's routes raise one) answers as its class.
    expect(errorBodyFor(new HttpException('I am a teapot', 418), 'c')).toMatchObject({
      status: 400,
      body: { error: 'BAD_REQUEST' },
    });
  });

  it("names the body parser's refusals the same way", () => {
    const tooLarge = Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large' });
    expect(errorBodyFor(tooLarge, 'c')).toMatchObject({
      status: 413,
      body: { error: 'PAYLOAD_TOO_LARGE', message: 'The request body is larger than the hub accepts.' },
    });
  });
});
